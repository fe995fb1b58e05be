"""A faulty Twilio at full size: 30% of requests answered 5xx, 10% 429 with Retry-After, 5% only
after the client gave up (a gateway timeout: nothing kept). Every message must arrive exactly
once, each retry after its backoff and never before Retry-After. The baseline gets the same
faults: its job raises and is gone.

The SMTP-down-for-10-minutes run needs a clock that moves 10 minutes in a moment: it is
tests/test_faults.py::test_smtp_down_for_ten_minutes_then_back (freezegun).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bench.common import (
    FakeTwilioProcess,
    due_times,
    engine_for,
    left_to_send,
    log,
    now,
    print_table,
    release_wave,
    temp_database,
)
from bench.wave import BaselineProcesses, enqueue_baseline, seed_wave
from tests.fakes.workers import Worker, wait_until, worker_env

CHAOS = "5xx=0.3,429=0.1,slow=0.05,slow_seconds=3,retry_after=1,slow_status=504,seed=7"
BASE, CAP = 0.5, 8.0
SETTINGS = {"RETRY_BACKOFF_SECONDS": BASE, "RETRY_BACKOFF_MAX_SECONDS": CAP,
            "SEND_TIMEOUT_SECONDS": 2, "MAX_SEND_ATTEMPTS": 30, "SEND_RATE_PER_SECOND": 100_000}


def add_arguments(parser) -> None:
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--baseline-count", type=int, default=2_000)


def _attempts(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text().splitlines():
        doc = json.loads(line)
        ids = parse_qs(urlsplit(doc["callback"] or "").query).get("m")
        doc["message_id"] = int(ids[0]) if ids else None
        rows.append(doc)
    return rows


def project_run(workdir: Path, count: int) -> dict:
    attempts_log = workdir / "attempts.jsonl"
    with temp_database("faults") as url:
        seed_wave(url, count)
        engine = engine_for(url)
        with FakeTwilioProcess(workdir, "--chaos", CHAOS, "--attempts-log",
                               str(attempts_log)) as fake:
            worker = Worker(workdir / "faults.log", worker_env(url, fake.url, **SETTINGS))
            try:
                worker.wait_ready()
                released = release_wave(engine, margin=0.5).timestamp()
                wait_until(lambda: left_to_send(engine) == 0, timeout=900, every=0.5,
                           what="everything sent")
                drained = time.time() - released
            finally:
                worker.stop()
            received = Counter(a.message_id for a in fake.arrivals())
            due = due_times(engine)
        engine.dispose()
    by_message = defaultdict(list)
    for attempt in _attempts(attempts_log):
        by_message[attempt["message_id"]].append(attempt)
    early_backoff = early_retry_after = retries = 0
    most = 0
    for attempts in by_message.values():
        most = max(most, len(attempts))
        for n, (before, after) in enumerate(zip(attempts, attempts[1:], strict=False), start=1):
            retries += 1
            gap = after["at"] - before["at"]
            early_backoff += gap < min(BASE * 2 ** (n - 1), CAP) / 2 - 0.01
            if before["status"] == 429:
                early_retry_after += gap < float(before["retry_after"]) - 0.01
    statuses = Counter(a["status"] for attempts in by_message.values() for a in attempts)
    return {"messages": count, "requests": sum(statuses.values()),
            "answers": {str(k): v for k, v in sorted(statuses.items())}, "retries": retries,
            "most_attempts_for_one_message": most, "drain_s": round(drained, 1),
            "sent_once": sum(1 for m in due if received.get(m) == 1),
            "duplicates": sum(n - 1 for m, n in received.items() if m in due and n > 1),
            "lost": len([m for m in due if m not in received]),
            "retries_before_backoff": early_backoff,
            "retries_before_retry_after": early_retry_after}


def baseline_run(workdir: Path, count: int) -> dict:
    attempts_log = workdir / "baseline-attempts.jsonl"
    attempts_log.touch()
    with temp_database("faultsbase") as url:
        seed_wave(url, count)
        engine = engine_for(url)
        due = due_times(engine)
        enqueue_baseline(url, [(m, now()) for m in sorted(due)])
        with FakeTwilioProcess(workdir, "--chaos", CHAOS, "--attempts-log",
                               str(attempts_log)) as fake:
            procs = BaselineProcesses(workdir, worker_env(url, fake.url), 1)
            progress = [-1, time.monotonic()]

            def settled() -> bool:  # the job store is empty and its thread pool has gone quiet
                attempts = fake.count() + sum(1 for _ in open(attempts_log))
                if attempts != progress[0]:
                    progress[:] = [attempts, time.monotonic()]
                return _jobs_left(engine) == 0 and time.monotonic() - progress[1] > 10

            try:
                wait_until(settled, timeout=900, every=0.5, what="baseline settled")
            finally:
                procs.stop()
            received = Counter(a.message_id for a in fake.arrivals())
        engine.dispose()
    return {"messages": count, "sent_once": sum(1 for m in due if received.get(m) == 1),
            "lost": len([m for m in due if m not in received]),
            "tracebacks": sum(e["tracebacks"] for e in procs.errors.values())}


def _jobs_left(engine) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM apscheduler_jobs")).scalar()


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        log(f"project: {args.count:,} messages through a faulty Twilio ({CHAOS})")
        ours = project_run(Path(tmp), args.count)
        log(f"baseline: {args.baseline_count:,} messages through the same faults")
        base = baseline_run(Path(tmp), args.baseline_count)
    print_table(
        f"Faulty Twilio: {CHAOS}",
        ["", "this project", "baseline", "target"],
        [
            ["messages", ours["messages"], base["messages"], ""],
            ["sent exactly once", ours["sent_once"], base["sent_once"], "all"],
            ["lost", ours["lost"], base["lost"], "0"],
            ["sent twice", ours["duplicates"], "", "0"],
            ["requests (answers)", f"{ours['requests']} {ours['answers']}", "", ""],
            ["retries before their backoff", ours["retries_before_backoff"], "", "0"],
            ["retries before Retry-After", ours["retries_before_retry_after"], "", "0"],
            ["most attempts for one message", ours["most_attempts_for_one_message"], "", ""],
            ["drain time (s)", ours["drain_s"], "", ""],
        ],
    )
    return {"chaos": CHAOS, "settings": SETTINGS, "project": ours, "baseline": base,
            "met": {"exactly_once": ours["sent_once"] == ours["messages"],
                    "backoff_respected": ours["retries_before_backoff"] == 0,
                    "retry_after_respected": ours["retries_before_retry_after"] == 0}}
