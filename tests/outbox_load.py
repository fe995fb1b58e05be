"""Filling the outbox with due texts, starting worker processes and waiting for them to drain
it: shared by the multi-process tests (tests/test_workers.py, tests/test_faults.py)."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock

import sqlalchemy as sa

from service.models import Client, Clinic, Message
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, NO_PROVIDERS, PUBLIC_URL


class Worker:
    """`aftercare worker` in a process of its own, sending texts to the fake Twilio at
    `fake_url`; `settings` add to or override the environment's."""

    def __init__(self, database_url, fake_url, log_path, **settings):
        env = {
            **os.environ, "DATABASE_URL": database_url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM_NUMBER": FROM_NUMBER,
            "TWILIO_API_BASE_URL": fake_url, "PUBLIC_BASE_URL": PUBLIC_URL, "SMTP_HOST": "",
            "WORKER_TICK_SECONDS": "0.2", "DISPATCH_BATCH_SIZE": "100",
            "SECRET_KEY": NO_PROVIDERS["SECRET_KEY"],  # a worker refuses to start without one
            **{key: str(value) for key, value in settings.items()},
        }
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115  (closed with the process)
        self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self._log.close()


def seed_due_texts(database_url: str, count: int) -> sa.Engine:
    """`count` check-in texts, each to its own number, all due now, for a clinic without quiet
    hours."""
    engine = sa.create_engine(database_url)
    now = datetime.now(UTC) - timedelta(seconds=1)
    with engine.begin() as conn:
        clinic_id = conn.execute(sa.insert(Clinic.__table__).returning(Clinic.id), [dict(
            name="Load Clinic", phone="+12025550100", time_zone="UTC", quiet_start=clock(0, 0),
            quiet_end=clock(0, 0), on_call_phones=[], on_call_emails=[], weekly_visits=3,
            maintenance_weeks=3, plan_overrides={}, created_at=now)]).scalar_one()
        phones = [f"+1500555{i:04d}" for i in range(count)]
        conn.execute(sa.insert(Client.__table__), [dict(
            clinic_id=clinic_id, name=f"Client {i}", phone=phone, language="en", time_zone="UTC",
            sms_consent_at=now, created_at=now) for i, phone in enumerate(phones)])
        ids = dict(conn.execute(sa.select(Client.phone, Client.id)).all())
        conn.execute(sa.insert(Message.__table__), [dict(
            clinic_id=clinic_id, client_id=ids[phone], kind="checkin", channel="sms",
            recipient=phone, due_at=now, next_attempt_at=now, status="pending", attempts=0,
            dedupe_key=f"fault:{phone}", created_at=now) for phone in phones])
    return engine


def left(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM message WHERE status IN ('pending', 'claimed')")).scalar()


def wait_until_drained(engine, timeout=120.0) -> None:
    """Waits on another process's writes: nothing to wait on but the rows, so a bounded poll."""
    deadline = time.monotonic() + timeout
    while (remaining := left(engine)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert remaining == 0, f"{remaining} messages still pending or claimed after {timeout} s"
