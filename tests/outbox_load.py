"""Filling the outbox with due texts, starting worker processes and waiting for them to drain
it: shared by the multi-process tests (tests/test_workers.py, tests/test_faults.py)."""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from urllib.parse import parse_qs, urlsplit

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

    @property
    def worker_id(self) -> str:
        """What it writes in a row's claimed_by (jobs.worker.worker_id)."""
        return f"{socket.gethostname()}:{self.proc.pid}"

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


def message_id(form: dict) -> int:
    """The outbox row a text came from: its status callback says (?m=<id>)."""
    return int(parse_qs(urlsplit(form["StatusCallback"]).query)["m"][0])


def claimed_by(engine, worker: Worker) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text(
            "SELECT id FROM message WHERE status = 'claimed' AND claimed_by = :w"),
            {"w": worker.worker_id}).scalars())


def left(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM message WHERE status IN ('pending', 'claimed')")).scalar()


def wait_until(condition, timeout: float = 60.0, what: str = "the condition"):
    """Waits on another process's writes: nothing to wait on but the rows, so a bounded poll.
    Returns the condition's first true value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)
    return value


def wait_until_drained(engine, timeout=120.0) -> None:
    wait_until(lambda: left(engine) == 0, timeout, "every message sent")
