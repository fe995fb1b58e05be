"""The schema is built only by migrations: they must produce exactly what the models declare."""

import re

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from service.messaging import outbox
from service.ops import collector
from tests.conftest import BOTH_BACKENDS
from tests.helpers import query_plan


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
    plan = query_plan(database_url, lambda now: outbox.due(now, 500))
    assert any("ix_message_due" in line for line in plan), plan


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_the_due_metric_reads_one_index_range_per_priority(database_url):
    """Every scrape counts the due rows: one range of ix_message_due per priority (PostgreSQL:
    `Index Cond: ((priority = 1) AND (next_attempt_at <= ...))`, SQLite: `ix_message_due
    (priority=? AND next_attempt_at<?)`), not a walk past every row pending later."""
    plan = query_plan(database_url, collector.due_backlog)
    ranges = [line for line in plan if re.search(
        r"(Index Cond: |ix_message_due )\(+priority ?= ?[\d?]+\)? AND \(?next_attempt_at ?<", line)]
    assert any("ix_message_due" in line for line in plan), plan
    assert len(ranges) == len(outbox.PRIORITIES), plan
