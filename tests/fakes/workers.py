"""`aftercare worker` processes sending to the fake Twilio, an outbox filled with due texts, and
waiting for them to drain it: one implementation for the multi-process tests (test_workers,
test_faults, test_urgent_first) and for bench/. Bench imports tests.fakes; tests never import
bench (but tests/test_bench.py, which tests it)."""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from service.models import Client, Clinic, Message

ROOT = Path(__file__).resolve().parents[2]
# The account every process talking to a fake uses (the fakes accept any; the web app checks
# the token in webhook signatures).
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token"
FROM_NUMBER = "+12025550199"
PUBLIC_URL = "https://aftercare.example.test"
SECRET_KEY = "test-secret-of-at-least-32-bytes!"  # a process refuses to start without one
# What the tests add: a short tick and small batches, so a few thousand texts drain in seconds.
QUICK = {"WORKER_TICK_SECONDS": 0.2, "DISPATCH_BATCH_SIZE": 100}


def worker_env(database_url: str, fake_url: str, **settings) -> dict[str, str]:
    """The environment of a worker sending texts to the fake Twilio at `fake_url`, no email;
    `settings` add to or override it. Every provider setting is pinned, so none comes from the
    developer's shell."""
    env = {
        **os.environ, "DATABASE_URL": database_url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": fake_url, "PUBLIC_BASE_URL": PUBLIC_URL, "SMTP_HOST": "",
        "TWILIO_MESSAGING_SERVICE_SID": "", "TWILIO_API_KEY_SID": "",
        "TWILIO_API_KEY_SECRET": "", "SECRET_KEY": SECRET_KEY,
    }
    env.update({key: str(value) for key, value in settings.items()})
    return env


def wait_until(condition, timeout: float = 60.0, every: float = 0.25, what: str = "condition"):
    """Waits on another process: nothing to wait on but what it writes, so a bounded poll.
    Returns the condition's first true value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(every)
    return value


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), for "was the fake the bottleneck?"."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Worker:
    """`aftercare worker` as a process of its own, its output in the file `log_path`."""

    def __init__(self, log_path: Path, env: dict[str, str]):
        self.log_path = log_path
        self._log = open(log_path, "w")  # closed in stop() or kill()
        self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], cwd=ROOT,
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.started = time.time()

    @property
    def worker_id(self) -> str:
        """What it writes in a row's claimed_by (jobs.worker.worker_id)."""
        return f"{socket.gethostname()}:{self.proc.pid}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the scheduler runs (its first dispatch tick has happened)."""
        wait_until(lambda: "started" in self.log_path.read_text() or not self.alive(), timeout,
                   what="worker start")
        if not self.alive():
            raise RuntimeError(f"worker died: {self.log_path.read_text()[-2000:]}")
        time.sleep(1.2)  # the first tick runs at start; let it find nothing due

    def alive(self) -> bool:
        return self.proc.poll() is None

    def peak_rss_mib(self) -> float:
        return peak_rss_mib(self.proc.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def errors(self) -> int:
        return sum(1 for line in self.log_path.read_text().splitlines()
                   if '"level": "ERROR"' in line or " ERROR " in line
                   or line.startswith("Traceback"))


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


def wait_until_drained(engine, timeout=120.0) -> None:
    wait_until(lambda: left(engine) == 0, timeout, what="every message sent")
