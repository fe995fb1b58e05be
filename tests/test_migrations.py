"""The schema is built only by migrations: they must produce exactly what the models declare."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel

from service import outbox
from service.models import Clinic, Message
from tests.conftest import BOTH_BACKENDS


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_migrations_match_the_models(database_url):
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_the_dispatch_query_uses_the_partial_index(database_url):
    """The index's WHERE must match the query's, or every tick scans the whole outbox: with an
    outbox of mostly sent rows, the planner must pick ix_message_due."""
    engine = sa.create_engine(database_url)
    now = datetime.now(UTC)
    with Session(engine) as session:
        clinic = Clinic(name="c", phone="+12025550100")
        session.add(clinic)
        session.commit()
        clinic_id = clinic.id
    with engine.begin() as conn:
        conn.execute(sa.insert(Message.__table__), [dict(
            clinic_id=clinic_id, kind="checkin", channel="sms", recipient="+1", due_at=now,
            next_attempt_at=now, status="pending" if i % 500 == 0 else "sent",
            dedupe_key=f"k{i}") for i in range(5000)])
        conn.execute(sa.text("ANALYZE"))
        compiled = outbox.due(now, 500).compile(conn, compile_kwargs={"literal_binds": True})
        explain = "EXPLAIN" if conn.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
        plan = [str(row[-1]) for row in conn.execute(sa.text(f"{explain} {compiled}"))]
    engine.dispose()
    assert any("ix_message_due" in line for line in plan), plan
