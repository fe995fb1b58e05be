"""The story most tests tell, in one place: a clinic's booking system enrols Ana through the API
at a pinned moment, time passes, the dispatch job runs, Ana texts back through the signed webhook,
and the test looks at what the fake Twilio received and what the outbox holds.

Test modules import from here (and from conftest), never from one another."""

from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from itertools import count

import sqlalchemy as sa
from freezegun import freeze_time
from sqlmodel import Session, func, select
from twilio.request_validator import RequestValidator

from service.models import Client, Clinic, Message
from tests.conftest import AUTH_TOKEN, FROM_NUMBER, PUBLIC_URL, auth

NOW = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # Wednesday 10:00 in New York: outside quiet hours
PHONE = "+12025550123"
EMAIL = "ana@example.com"
ON_CALL_PHONE = "+12025550101"  # tests.conftest.make_clinic's on-call number
WEBHOOK_URL = f"{PUBLIC_URL}/webhooks/twilio/sms"
_sids = count(1)  # Twilio's MessageSid of each inbound text: unique within a run
ANA = {"name": "Ana Ruiz", "phone": PHONE, "sms_consent": True, "time_zone": "America/New_York"}


def at(moment):
    # real_asyncio: the dispatcher's event loop and the fakes keep real timers.
    return freeze_time(moment, real_asyncio=True)


def enrol(web, key, moment=NOW, *, person=None, posted_at=None, **visit) -> dict:
    """Ana's visit at `moment`, posted by the booking system 5 s later (or at `posted_at`); the
    answer's body. `person` changes Ana's fields (an email, a language, no phone...), `visit` the
    visit's (channels, pain_before, next_appointment, external_id...)."""
    body = {"client": ANA | (person or {}), "occurred_at": moment.isoformat(),
            "pain_before": 4} | visit
    with at(posted_at or moment + timedelta(seconds=5)):
        response = web.post("/api/v1/visits", json=body, headers=auth(key))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def signed_post(web, form, signature=None):
    """An inbound SMS as Twilio posts it: signed unless the test forges the signature."""
    if signature is None:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(WEBHOOK_URL, form)
    return web.post("/webhooks/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})


def text(web, body, moment=None, sid=None, sender=PHONE):
    """`sender` texts `body` to the clinic's number at `moment` (the real time when None)."""
    form = {"MessageSid": sid or f"SM{next(_sids):032d}", "From": sender, "To": FROM_NUMBER,
            "Body": body}
    with at(moment) if moment else nullcontext():
        response = signed_post(web, form)
    assert response.status_code == 200
    return response


def drain(dispatcher, moment):
    """The worker's dispatch job, run once at `moment`."""
    with at(moment):
        dispatcher.drain()


def texts_to(twilio, number):
    return [m.body for m in twilio.messages if m.to == number]


def count_rows(session, model, *where):
    session.expire_all()
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


def messages(session, **where):
    """The outbox's rows in the order they were written, those whose fields equal `where`."""
    session.expire_all()
    query = select(Message).order_by(Message.id)
    for name, value in where.items():
        query = query.where(getattr(Message, name) == value)
    return session.exec(query).all()


def query_plan(database_url, query) -> list[str]:
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


def seed_wave(engine, clinic_id: int, count: int, due: datetime, area: str) -> None:
    """`count` routine check-in texts of one clinic, each to a client of its own (+1<area>555...),
    all due at `due`."""
    phones = [f"+1{area}555{i:04d}" for i in range(count)]
    with engine.begin() as conn:
        conn.execute(sa.insert(Client.__table__), [dict(
            clinic_id=clinic_id, name=f"Client {i}", phone=phone, language="en",
            time_zone="America/New_York", sms_consent_at=due, created_at=due)
            for i, phone in enumerate(phones)])
        ids = dict(conn.execute(sa.select(Client.phone, Client.id)
                                .where(Client.clinic_id == clinic_id)).all())
        conn.execute(sa.insert(Message.__table__), [dict(
            clinic_id=clinic_id, client_id=ids[phone], kind="checkin", channel="sms",
            recipient=phone, due_at=due, next_attempt_at=due, status="pending", attempts=0,
            dedupe_key=f"wave:{phone}", created_at=due) for phone in phones])
