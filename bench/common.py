"""Shared machinery of the benchmarks: a PostgreSQL database of their own, the fake Twilio server
in its own process, fast seeding with generate_series, and the result table. Worker processes,
their settings and wait_until are the tests' (tests/fakes/workers.py): bench imports tests.fakes,
never the other way. The baseline's processes are bench/wave.py's BaselineProcesses.

Nothing here is timed by the tests: these are measurements, printed and written as JSON under
bench/results/.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from service import db
from tests.fakes.workers import Worker, cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
ADMIN_URL = os.environ.get(
    "AFTERCARE_BENCH_PG_URL",
    os.environ.get("AFTERCARE_TEST_PG_URL",
                   "postgresql+psycopg://aftercare:aftercare@127.0.0.1:5432/aftercare_test"),
)
FAR_FUTURE = timedelta(days=30)


def now() -> datetime:
    return datetime.now(UTC)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the database

@contextlib.contextmanager
def temp_database(tag: str):
    """A migrated PostgreSQL database of this run's own; dropped afterwards (WITH FORCE)."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"aftercare_bench_{tag}_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        db.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url, pool_size=2, max_overflow=2)


def create_clinic(engine: sa.Engine) -> int:
    """A clinic without quiet hours (start == end), so the bench measures sending, not waiting."""
    with engine.begin() as conn:
        return conn.execute(sa.text("""
            INSERT INTO clinic (name, phone, time_zone, quiet_start, quiet_end, on_call_phones,
                on_call_emails, weekly_visits, maintenance_weeks, use_suggested_interval,
                renotify_minutes, renotify_max, plan_overrides, created_at)
            VALUES ('Bench Back Walking', '+12025550100', 'America/New_York', '00:00', '00:00',
                '[]', '[]', 3, 3, false, 30, 3, '{}', timezone('utc', now()))
            RETURNING id""")).scalar_one()


def seed_clients(engine: sa.Engine, clinic_id: int, count: int, start: int = 0) -> None:
    """`count` clients, each with one visit 12 h ago (still in its 24-hour window)."""
    with engine.begin() as conn:
        conn.execute(sa.text("""
            INSERT INTO client (clinic_id, name, phone, email, language, time_zone,
                                sms_consent_at, created_at)
            SELECT :clinic, 'Client ' || g || ' Bench', '+1555' || lpad(g::text, 7, '0'),
                   NULL, 'en', 'America/New_York', timezone('utc', now()) - interval '2 days',
                   timezone('utc', now()) - interval '2 days'
            FROM generate_series(:start + 1, :start + :n) g"""),
            {"clinic": clinic_id, "n": count, "start": start})
        conn.execute(sa.text("""
            INSERT INTO visit (clinic_id, client_id, occurred_at, visit_number, channels,
                               created_at)
            SELECT clinic_id, id, timezone('utc', now()) - interval '12 hours', 2, '["sms"]',
                   timezone('utc', now()) - interval '12 hours'
            FROM client WHERE clinic_id = :clinic AND id NOT IN (SELECT client_id FROM visit)"""),
            {"clinic": clinic_id})


def seed_messages(engine: sa.Engine, clinic_id: int, count: int, due: datetime,
                  spacing: float = 0.0, clients: int | None = None, tag: str = "wave",
                  kinds: tuple[str, ...] = ("heat", "checkin")) -> None:
    """`count` SMS rows, message i due at `due + i * spacing` seconds, to a distinct number
    each, spread over the clinic's clients (round robin over the first `clients`); the kinds
    alternate (by default the heat tip, which shows the window's local end time, and the
    check-in: what quiet hours hold until 08:00)."""
    with engine.begin() as conn:
        total_clients = conn.execute(sa.text(
            "SELECT count(*) FROM client WHERE clinic_id = :c"), {"c": clinic_id}).scalar_one()
        clients = min(clients or total_clients, total_clients)
        conn.execute(sa.text("""
            WITH c AS (SELECT row_number() OVER (ORDER BY client.id) - 1 AS k, client.id AS id,
                              visit.id AS visit_id
                       FROM client JOIN visit ON visit.client_id = client.id
                       WHERE client.clinic_id = :clinic ORDER BY client.id LIMIT :clients)
            INSERT INTO message (clinic_id, client_id, visit_id, kind, priority, params, channel,
                recipient, due_at, status, attempts, next_attempt_at, dedupe_key, created_at)
            SELECT :clinic, c.id, c.visit_id, (CAST(:kinds AS varchar[]))[1 + g % :nkinds],
                   1, '{}', 'sms',
                   '+1666' || lpad(g::text, 9, '0'),
                   :due + make_interval(secs => g * :spacing), 'pending', 0,
                   :due + make_interval(secs => g * :spacing),
                   :tag || ':' || g, timezone('utc', now())
            FROM generate_series(0, :n - 1) g JOIN c ON c.k = g % :clients"""),
            {"clinic": clinic_id, "n": count, "due": due.replace(tzinfo=None),
             "spacing": spacing, "clients": clients, "tag": tag, "kinds": list(kinds),
             "nkinds": len(kinds)})


def seed_clinic(engine: sa.Engine, messages: int, clients: int | None = None, start: int = 0,
                tag: str = "wave") -> int:
    """A clinic (create_clinic), its `clients` (default: one per message, numbered from `start`)
    and `messages` texts due far ahead: nothing is sent before the benchmark releases them."""
    clinic = create_clinic(engine)
    seed_clients(engine, clinic, clients or messages, start=start)
    seed_messages(engine, clinic, messages, now() + FAR_FUTURE, tag=tag)
    return clinic


def vacuum(url: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def release_wave(engine: sa.Engine, margin: float) -> datetime:
    """Every pending row becomes due at one moment, `margin` seconds from now: the 08:00 wave."""
    moment = now() + timedelta(seconds=margin)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE message SET due_at = :t, next_attempt_at = :t "
                             "WHERE status = 'pending'"), {"t": moment.replace(tzinfo=None)})
    return moment


def left_to_send(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(*) FROM message WHERE status IN ('pending', 'claimed') "
            "AND next_attempt_at < timezone('utc', now()) + interval '1 day'")).scalar_one()


def due_times(engine: sa.Engine) -> dict[int, float]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, extract(epoch FROM due_at) FROM message")).all()
    return {row[0]: float(row[1]) for row in rows}


# --------------------------------------------------------------------------- processes

@dataclass
class Arrival:
    message_id: int | None
    to: str
    at: float


class FakeTwilioProcess:
    """The fake Twilio server in its own process (it must not share our GIL), logging every
    accepted message as a JSON line."""

    def __init__(self, workdir: Path, *extra: str):
        self.log_path = workdir / f"twilio-{time.time_ns()}.jsonl"
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> FakeTwilioProcess:
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "tests.fakes.twilio_server", "--port", "0", "--log",
             str(self.log_path), *self.extra],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError(f"fake Twilio did not start: {self.url!r}")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def count(self) -> int:
        if not self.log_path.exists():
            return 0
        with open(self.log_path, "rb") as f:
            return sum(1 for _ in f)

    def arrivals(self) -> list[Arrival]:
        result = []
        if not self.log_path.exists():
            return result
        with open(self.log_path, encoding="utf-8") as f:
            for line in f:
                try:
                    doc = json.loads(line)
                except ValueError:  # a line cut by a kill: not a whole message
                    continue
                result.append(_arrival(doc))
        return result


def _arrival(doc: dict) -> Arrival:
    """The message's id is in its status callback's query (?m=<id>)."""
    ids = parse_qs(urlsplit(doc["form"].get("StatusCallback", "")).query).get("m")
    return Arrival(int(ids[0]) if ids else None, doc["to"], doc["received_at"])


class ArrivalTail:
    """The fake's log read as it grows, only its new whole lines each time: waiting for a few
    messages among thousands without parsing them all again at every look."""

    def __init__(self, fake: FakeTwilioProcess):
        self.path, self.offset, self.arrivals = fake.log_path, 0, []

    def read(self) -> list[Arrival]:
        if self.path.exists():
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                for line in f:
                    if not line.endswith(b"\n"):  # still being written
                        break
                    self.offset += len(line)
                    self.arrivals.append(_arrival(json.loads(line)))
        return self.arrivals


@contextlib.contextmanager
def running_worker(log_path: Path, env: dict[str, str]):
    """One `aftercare worker`, ready; killed on the way out, since what is measured is over
    before the rest of its wave would be sent."""
    worker = Worker(log_path, env)
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.kill()


def watch(condition, timeout: float, alive) -> None:
    """Until `condition()`, `timeout` seconds, or the sending process dies (`alive()` false).
    No error: what did not happen in time is what the benchmark reports."""
    deadline = time.monotonic() + timeout
    while not condition() and alive() and time.monotonic() < deadline:
        time.sleep(0.1)


# --------------------------------------------------------------------------- figures

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


@dataclass
class Delivery:
    """What the fake saw, checked against the outbox rows."""

    expected: int
    received: int = 0
    unique: int = 0
    duplicates: int = 0
    lost: int = 0
    first: float = 0.0
    last: float = 0.0
    lateness: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        span = self.last - self.first
        return self.unique / span if span > 0 else float("nan")

    def summary(self, released: float | None = None) -> dict:
        doc = {
            "messages": self.expected, "received": self.received, "duplicates": self.duplicates,
            "lost": self.lost, "rate_per_s": round(self.rate, 1),
            "lateness_p50_s": round(percentile(self.lateness, 50), 3),
            "lateness_p99_s": round(percentile(self.lateness, 99), 3),
            "lateness_max_s": round(max(self.lateness), 3) if self.lateness else None,
        }
        if released is not None:
            doc["drain_s"] = round(self.last - released, 2)
            doc["rate_from_release_per_s"] = round(self.unique / (self.last - released), 1)
        return doc


def check_delivery(arrivals: list[Arrival], due: dict[int, float]) -> Delivery:
    counts = Counter(a.message_id for a in arrivals)
    first_seen: dict[int, float] = {}
    for a in arrivals:
        if a.message_id is not None and a.message_id not in first_seen:
            first_seen[a.message_id] = a.at
    result = Delivery(expected=len(due), received=len(arrivals))
    result.unique = len([m for m in counts if m in due])
    result.duplicates = sum(n - 1 for m, n in counts.items() if m in due and n > 1)
    result.lost = len(due) - result.unique
    times = [first_seen[m] for m in first_seen if m in due]
    if times:
        result.first, result.last = min(times), max(times)
    result.lateness = [first_seen[m] - due[m] for m in first_seen if m in due]
    return result


def ratio(ours: float, theirs: float) -> str:
    if not theirs or theirs != theirs:
        return "-"
    return f"{ours / theirs:.2f}x"


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [header] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_result(name: str, doc: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "at": now().isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "load_avg_at_end": os.getloadavg()},
           "command": "python -m bench " + " ".join(sys.argv[1:]), **doc}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(f"(written to {path.relative_to(ROOT)})")
    return path
