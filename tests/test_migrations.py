"""The schema is built only by migrations: they must produce exactly what the models declare."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel

from service.messaging import outbox
from service.models import Clinic, Message
from service.ops import metrics
from tests.conftest import BOTH_BACKENDS


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_migrations_match_the_models(database_url):
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()


def explain(database_url, query) -> list[str]:
    """The plan of `query(now)` over an outbox of mostly sent rows, of both priorities."""
    engine = sa.create_engine(database_url)
    now = datetime.now(UTC)
    with Session(engine) as session:
        clinic = Clinic(name="c", phone="+12025550100")
        session.add(clinic)
        session.commit()
        clinic_id = clinic.id

    def message(i: int) -> dict:  # of 5,000: 20 due now, 1,000 pending an hour later, the rest sent
        later = i % 5 == 2
        return dict(clinic_id=clinic_id, kind="checkin", channel="sms", recipient="+1",
                    due_at=now, next_attempt_at=now + timedelta(hours=1) if later else now,
                    status="pending" if later or i % 500 < 2 else "sent", priority=i % 2,
                    dedupe_key=f"k{i}")

    with engine.begin() as conn:
        conn.execute(sa.insert(Message.__table__), [message(i) for i in range(5000)])
        conn.execute(sa.text("ANALYZE"))
        compiled = query(now).compile(conn, compile_kwargs={"literal_binds": True})
        verb = "EXPLAIN" if conn.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
        plan = [str(row[-1]) for row in conn.execute(sa.text(f"{verb} {compiled}"))]
    engine.dispose()
    return plan


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_the_dispatch_query_uses_the_partial_index(database_url):
    """The index's WHERE must match the query's, or every tick scans the whole outbox: with an
    outbox of mostly sent rows, the planner must pick ix_message_due."""
    plan = explain(database_url, lambda now: outbox.due(now, 500))
    assert any("ix_message_due" in line for line in plan), plan


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_the_due_metric_reads_one_index_range_per_priority(database_url):
    """Every scrape counts the due rows: one range of ix_message_due per priority (PostgreSQL:
    `Index Cond: ((priority = 1) AND (next_attempt_at <= ...))`, SQLite: `ix_message_due
    (priority=? AND next_attempt_at<?)`), not a walk past every row pending later."""
    plan = explain(database_url, metrics.due_backlog)
    ranges = [line for line in plan if re.search(
        r"(Index Cond: |ix_message_due )\(+priority ?= ?[\d?]+\)? AND \(?next_attempt_at ?<", line)]
    assert any("ix_message_due" in line for line in plan), plan
    assert len(ranges) == len(outbox.PRIORITIES), plan
