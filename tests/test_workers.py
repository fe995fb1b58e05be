"""Real worker processes on PostgreSQL: several share the outbox without duplicates, and a worker
killed mid-batch loses nothing. The fake Twilio server counts what actually arrived."""

from collections import Counter

import pytest
import sqlalchemy as sa

from tests.fakes.workers import (
    QUICK,
    Worker,
    claimed_by,
    message_id,
    seed_due_texts,
    wait_until,
    wait_until_drained,
    worker_env,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
COUNT = 2000


@pytest.fixture
def backend():
    return "postgresql"


@pytest.fixture
def due_messages(database_url):
    """COUNT check-in texts, each to its own number, all due now."""
    engine = seed_due_texts(database_url, COUNT)
    yield engine
    engine.dispose()


def test_two_workers_share_the_outbox_without_duplicates(due_messages, database_url,
                                                         fake_twilio, tmp_path):
    env = worker_env(database_url, fake_twilio.url, **QUICK, SEND_RATE_PER_SECOND=100000)
    workers = [Worker(tmp_path / f"w{i}.log", env) for i in (1, 2)]
    try:
        wait_until_drained(due_messages)
    finally:
        for worker in workers:
            worker.stop()
    received = Counter(m.to for m in fake_twilio.messages)
    assert len(received) == COUNT  # none lost
    assert max(received.values()) == 1  # none twice
    with due_messages.connect() as conn:
        by_worker = dict(conn.execute(sa.text(
            "SELECT claimed_by, count(*) FROM message WHERE status = 'sent' GROUP BY 1")).all())
    assert sum(by_worker.values()) == COUNT
    assert len(by_worker) == 2, by_worker  # both took part


def test_a_worker_killed_mid_batch_loses_nothing(due_messages, database_url, fake_twilio,
                                                 tmp_path):
    env = worker_env(database_url, fake_twilio.url, **QUICK, SEND_RATE_PER_SECOND=500,
                     CLAIM_TIMEOUT_SECONDS=2)
    worker = Worker(tmp_path / "victim.log", env)
    fake_twilio.wait_for(COUNT // 4, timeout=60)
    wait_until(lambda: claimed_by(due_messages, worker), what="rows claimed by the victim")
    worker.kill()
    fake_twilio.wait_disconnected()  # every request it wrote before dying has arrived
    # The victim is dead: what it still holds is what it held when it died.
    stranded = claimed_by(due_messages, worker)
    assert stranded, "the kill must leave claimed rows, or the reaper is not exercised"
    in_flight = stranded & {message_id(m.form) for m in fake_twilio.messages}

    replacement = Worker(tmp_path / "replacement.log", env)
    try:
        wait_until_drained(due_messages)
    finally:
        replacement.stop()
    with due_messages.connect() as conn:  # the reaper gave them back and the replacement sent them
        outcome = set(conn.execute(sa.text(
            "SELECT DISTINCT status, claimed_by FROM message WHERE id = ANY(:ids)"),
            {"ids": list(stranded)}).all())
    assert outcome == {("sent", replacement.worker_id)}
    received = Counter(message_id(m.form) for m in fake_twilio.messages)
    assert len(received) == COUNT  # none lost
    duplicates = sum(received.values()) - COUNT
    # Only what was in flight at the kill can go twice: sent, but not yet recorded as sent.
    assert duplicates <= len(in_flight), (duplicates, len(in_flight))
    print(f"\nkilled with {len(stranded)} claimed rows, {len(in_flight)} of them sent; "
          f"{duplicates} sent twice")
