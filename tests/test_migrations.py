"""The schema is built only by migrations: they must produce exactly what the models declare."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import service.models  # noqa: F401
from service import outbox
from tests.conftest import BOTH_BACKENDS


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_migrations_match_the_models(database_url):
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_the_dispatch_query_can_use_the_partial_index(database_url):
    """The index's WHERE must match the query's, or every tick scans the whole outbox."""
    engine = sa.create_engine(database_url)
    query = outbox.due(datetime.now(UTC), 500)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET enable_seqscan = off"))  # an empty table would tempt it
            compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
            plan = conn.execute(sa.text(f"EXPLAIN {compiled}")).scalars().all()
        else:
            compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
            plan = [row[-1] for row in conn.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))]
    engine.dispose()
    assert any("ix_message_due" in line for line in plan), plan
