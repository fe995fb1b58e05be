"""The database itself refuses a message status or kind that domain/messages.py does not list
(migration 0007's CHECK constraints), and accepts every one it does."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from service.domain.messages import MessageKind, MessageStatus
from service.models import Clinic, Message
from tests.conftest import BOTH_BACKENDS

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def insert(engine: sa.Engine, **fields) -> None:
    with Session(engine) as session:
        clinic = Clinic(name="c", phone="+12025550100")
        session.add(clinic)
        session.flush()
        session.execute(sa.insert(Message.__table__).values(**{
            "clinic_id": clinic.id, "kind": MessageKind.CHECKIN, "channel": "sms",
            "recipient": "+12025550123", "due_at": NOW, "next_attempt_at": NOW,
            "status": MessageStatus.PENDING, "dedupe_key": f"k{clinic.id}", **fields}))
        session.commit()


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
@pytest.mark.parametrize("column", ["status", "kind"])
def test_the_database_refuses_an_unknown_status_or_kind(database_url, column):
    engine = sa.create_engine(database_url)
    try:
        with pytest.raises(sa.exc.IntegrityError, match=f"ck_message_{column}"):
            insert(engine, **{column: "sent_twice"})
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_the_database_accepts_every_status_and_kind(database_url):
    engine = sa.create_engine(database_url)
    try:
        for status in MessageStatus:
            insert(engine, status=status)
        for kind in MessageKind:
            insert(engine, kind=kind)
        with engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(Message.__table__))
            assert stored.scalar() == len(MessageStatus) + len(MessageKind)
    finally:
        engine.dispose()
