"""Urgent first, and a fair share of one sender for each clinic (issue 11), in order, not time:

- the senders' queue gives the next rate-limited start to an urgent message, then to each clinic
  in turn;
- a claim gives each clinic with texts due its share, through one index range per clinic;
- a red-flag reply posted during a rate-limited wave reaches the fake Twilio before two seconds'
  worth of the routine texts already claimed and queued before it;
- a second clinic's texts go out between the first clinic's wave on the same sender;
- an urgent row committed in the worker's own process, or (PostgreSQL) by any process, wakes the
  dispatcher without waiting for a poll.
"""

import asyncio
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from sqlmodel import select
from twilio.request_validator import RequestValidator

from service.config import Config
from service.messaging import outbox
from service.messaging.dispatch import Dispatcher, SendQueue, SendRateLimiter
from service.models import Client, Message
from tests.conftest import AUTH_TOKEN, BOTH_BACKENDS, FROM_NUMBER, PUBLIC_URL, make_clinic
from tests.fakes.workers import Worker, seed_due_texts, wait_until, worker_env
from tests.helpers import query_plan, seed_wave

NOW = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # Wednesday 10:00 in New York
PHONE = "+12025550123"
ON_CALL_PHONE = "+12025550101"  # tests.conftest.make_clinic's on-call number


def at(moment):
    # real_asyncio: the dispatcher's event loop, its rate limits and the fakes keep real timers.
    return freeze_time(moment, real_asyncio=True)


def wait_for_texts(fake, found) -> list:
    """Until `found(messages)` holds for what the fake received (each wait bounded)."""
    while not found(received := fake.messages):
        fake.wait_for(len(received) + 1, timeout=30)
    return received


class Draining:
    """Dispatcher.drain() in a thread of its own, as the worker's scheduler runs it; stopped
    (SIGTERM's way: nothing more claimed, what is in hand still sent) on leaving."""

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher
        self.thread = threading.Thread(target=dispatcher.drain)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.dispatcher.stop()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()


# --- the senders' queue --------------------------------------------------------------------------

def take_all(put_first, put_after_first_start=(), senders: int = 3, rate: float = 50) -> list:
    """What senders take from a SendQueue, in order: `put_first` queued before they start, then
    `put_after_first_start` once the first message has started (the rest wait for the rate)."""
    async def run():
        limiter, queue, taken = SendRateLimiter(rate), SendQueue(), []

        async def sender():
            while (item := await queue.take()) is not None:
                taken.append(item)

        for item, clinic, urgent in put_first:
            queue.put(item, limiter, clinic, urgent)
        tasks = [asyncio.create_task(sender()) for _ in range(senders)]
        while not taken:
            await asyncio.sleep(0)
        for item, clinic, urgent in put_after_first_start:
            queue.put(item, limiter, clinic, urgent)
        queue.close()
        await asyncio.gather(*tasks)
        return taken

    return asyncio.run(run())


def test_the_next_start_goes_to_an_urgent_message():
    """Senders wait for the rate without holding a message: an urgent one queued behind five
    routine ones takes the very next start."""
    routine = [(f"routine {n}", 1, False) for n in range(5)]
    taken = take_all(routine, [("urgent", 1, True)])
    assert taken == ["routine 0", "urgent", "routine 1", "routine 2", "routine 3", "routine 4"]


def test_clinics_take_turns_on_one_sender():
    queued = [(f"A{n}", 1, False) for n in range(4)] + [(f"B{n}", 2, False) for n in range(2)]
    assert take_all(queued, senders=1, rate=10_000) == ["A0", "B0", "A1", "B1", "A2", "A3"]


# --- claiming ------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_claim_gives_each_clinic_with_texts_due_its_share(app, session):
    engine = app.extensions["aftercare.engine"]
    a, b = make_clinic(session, "A")[0], make_clinic(session, "B")[0]
    seed_wave(engine, a.id, 50, NOW - timedelta(minutes=10), area="500")  # A's are older
    seed_wave(engine, b.id, 5, NOW, area="600")

    def claim(limit: int) -> Counter:
        with engine.begin() as conn:
            ids = outbox.claim_due(conn, "w", NOW, limit)
            return Counter(conn.execute(sa.select(Message.clinic_id)
                                        .where(Message.id.in_(ids))).scalars())

    # 10 each; B has 5, so A's oldest fill the claim.
    assert claim(20) == {a.id: 15, b.id: 5}
    assert claim(20) == {a.id: 20}  # one clinic due: oldest first


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
@pytest.mark.parametrize("query", [outbox.clinics_due, lambda now: outbox.clinic_due(now, 1, 50)],
                         ids=["clinics with texts due", "a clinic's share"])
def test_the_fair_claim_reads_one_index_range_per_clinic(database_url, query):
    """Which clinics have texts due, and each one's share: ix_message_due_clinic, however many
    rows are pending later (a scan would read the whole outbox at every claim)."""
    plan = query_plan(database_url, query)
    assert any("ix_message_due_clinic" in line for line in plan), plan


# --- end to end: the fake Twilio's arrival order -------------------------------------------------

@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_red_flag_reply_overtakes_a_rate_limited_wave(app, client, clinic, session, settings,
                                                        providers):
    """300 routine texts due at 20/s: claims of 2 s worth, two in hand (up to 80 texts claimed
    and queued). The red flag's urgent advice to the client and the on-call alert reach the
    fake before two seconds' worth (40) of the routine texts: the poll is an hour here, so the
    in-process signal of the webhook's commit is what wakes the drain."""
    twilio, _ = providers
    rate = 20
    engine = app.extensions["aftercare.engine"]
    config = Config({**settings, "SEND_RATE_PER_SECOND": rate, "URGENT_POLL_SECONDS": 3600})
    dispatcher = Dispatcher(config, engine, "urgent-worker")
    session.add(Client(clinic_id=clinic[0].id, name="Ana Ruiz", phone=PHONE,
                       time_zone="America/New_York", sms_consent_at=NOW))
    session.commit()
    form = {"MessageSid": "SM" + "7" * 32, "From": PHONE, "To": FROM_NUMBER,
            "Body": "my leg is numb and I can't walk"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        f"{PUBLIC_URL}/webhooks/twilio/sms", form)
    forget = outbox.on_urgent(dispatcher.wake)
    try:
        with at(NOW):
            seed_wave(engine, clinic[0].id, 300, NOW, area="500")
            with Draining(dispatcher):
                twilio.wait_for(10, timeout=30)  # the wave is going out
                response = client.post("/webhooks/twilio/sms", data=form,
                                       headers={"X-Twilio-Signature": signature})
                assert response.status_code == 200
                sent_before = len(twilio.messages)
                wait_for_texts(twilio, lambda received: {PHONE, ON_CALL_PHONE} <= {
                    m.to for m in received})
    finally:
        forget()
    arrivals = [m.to for m in twilio.messages]
    routine_ahead = {to: arrivals.index(to) - sent_before for to in (PHONE, ON_CALL_PHONE)}
    assert max(routine_ahead.values()) <= 2 * rate, routine_ahead
    assert "urgent" in next(m.body for m in twilio.messages if m.to == PHONE).lower()
    session.expire_all()
    left = session.exec(select(Message).where(Message.status.in_(["pending", "claimed"]))).all()
    assert len(left) > 100  # the wave was far from over (the drain stopped after the alert)


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_second_clinic_s_texts_go_out_between_a_first_clinic_s_wave(app, session, settings,
                                                                      providers):
    """Clinic A's 200 texts are older than clinic B's 10, one sender for both: B's go out among
    A's first, not after A's wave."""
    twilio, _ = providers
    engine = app.extensions["aftercare.engine"]
    a, b = make_clinic(session, "A")[0], make_clinic(session, "B")[0]
    config = Config({**settings, "SEND_RATE_PER_SECOND": 50, "DISPATCH_HORIZON_SECONDS": 0.5})
    with at(NOW):
        seed_wave(engine, a.id, 200, NOW - timedelta(minutes=5), area="500")
        seed_wave(engine, b.id, 10, NOW, area="600")
        with Draining(Dispatcher(config, engine, "fair-worker")):
            wait_for_texts(twilio, lambda received: sum(
                m.to.startswith("+1600") for m in received) == 10)
    arrivals = [m.to[:5] for m in twilio.messages]
    b_at = [n for n, prefix in enumerate(arrivals) if prefix == "+1600"]
    # Claims of 25 (0.5 s at 50/s): the first has B's 10 and 15 of A's, sent in turn.
    assert b_at[0] <= 2 and b_at[-1] < 25, arrivals[:30]
    assert arrivals.count("+1500") > len(b_at)  # A was sending all along


# --- waking --------------------------------------------------------------------------------------

def test_an_urgent_commit_signals_this_process(app, clinic, session):
    """A worker's own writes (a re-sent escalation alert) wake it: SQLite has no NOTIFY."""
    calls = []
    forget = outbox.on_urgent(lambda: calls.append(1))

    def add(priority: int, key: str) -> None:
        session.add(Message(clinic_id=clinic[0].id, kind="help", channel="sms", recipient=PHONE,
                            due_at=NOW, next_attempt_at=NOW, priority=priority, dedupe_key=key))
        session.flush()

    try:
        add(0, "rolled back")
        session.rollback()
        add(1, "routine")
        session.commit()
        assert calls == []
        add(0, "urgent")
        session.commit()
        assert calls == [1]
    finally:
        forget()


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql"])
def test_postgres_notify_wakes_an_idle_worker(database_url, fake_twilio, tmp_path):
    """A worker process that looks for due rows once an hour (tick and poll): an urgent row
    inserted by another process once it is idle goes out, so NOTIFY woke it."""
    engine = seed_due_texts(database_url, 1)  # drained by the first tick, at start
    worker = Worker(tmp_path / "worker.log", worker_env(
        database_url, fake_twilio.url, WORKER_TICK_SECONDS=3600, URGENT_POLL_SECONDS=3600))
    try:
        fake_twilio.wait_for(1, timeout=30)
        wait_until(lambda: all(line in worker.log_path.read_text()
                               for line in ("listening for urgent messages", "drain finished")),
                   30, what="the worker idle")
        now = datetime.now(UTC)
        with engine.begin() as conn:
            client = conn.execute(sa.select(Client.__table__)).one()
            conn.execute(sa.insert(Message.__table__).values(
                clinic_id=client.clinic_id, client_id=client.id, kind="help", channel="sms",
                recipient=client.phone, due_at=now, next_attempt_at=now, priority=0,
                status="pending", attempts=0, dedupe_key="urgent:help", created_at=now))
        [_, urgent] = fake_twilio.wait_for(2, timeout=20)
    finally:
        worker.stop()
        engine.dispose()
    assert urgent.to == client.phone and "STOP" in urgent.body  # the HELP answer
