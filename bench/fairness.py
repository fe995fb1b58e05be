"""Fairness: two clinics on one sender (the global Twilio number) at --rate texts/s. Clinic A's
--count texts fall due at once, clinic B's --b-count --offset seconds later. Measured: when B's
last (and first) text reaches the fake after B's release, how many of A's went ahead of it, A's
rate meanwhile, and the busiest second of the two together (the sender's rate, never exceeded).
The worker is killed --after seconds after B's last text: A's wave is not sent to its end.

Baseline (bench/baseline.py): the same rows as APScheduler jobs, A's due at the release and B's
--offset later; it has no rate limit, so it runs at its own pace. Its order at --rate is also
shown: A's texts sent between B's release and B's last, plus B's own, divided by the rate.
"""

from __future__ import annotations

import bisect
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from bench import baseline
from bench.common import (
    ArrivalTail,
    FakeTwilioProcess,
    engine_for,
    log,
    now,
    print_table,
    running_worker,
    seed_clinic,
    temp_database,
    vacuum,
    watch,
)
from bench.ratelimit import busiest_second
from bench.wave import BaselineProcesses
from tests.fakes.workers import worker_env

TARGET_S = 10.0


def add_arguments(parser) -> None:
    parser.add_argument("--count", type=int, default=20_000, help="clinic A's texts")
    parser.add_argument("--b-count", type=int, default=100, help="clinic B's texts")
    parser.add_argument("--rate", type=int, default=30, help="the sender's SEND_RATE_PER_SECOND")
    parser.add_argument("--offset", type=float, default=5.0,
                        help="seconds from A's release to B's")
    parser.add_argument("--after", type=float, default=3.0,
                        help="seconds of A's wave still watched once B is done")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds after B's release that B is waited for")
    parser.add_argument("--skip-baseline", action="store_true")


def seed(url: str, a_count: int, b_count: int) -> dict[int, str]:
    """Two clinics, neither with a sender of its own (so both share the global one); returns
    each message's clinic, "A" or "B"."""
    engine = engine_for(url)
    clinics = {}
    for name, count, start in (("A", a_count, 0), ("B", b_count, a_count)):
        clinics[name] = seed_clinic(engine, count, start=start, tag=name)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, clinic_id FROM message")).all()
    engine.dispose()
    vacuum(url)
    names = {clinic: name for name, clinic in clinics.items()}
    return {row.id: names[row.clinic_id] for row in rows}


def _release(url: str, clinic_of: dict[int, str], at: float, offset: float) -> None:
    """A's rows due at `at`, B's `offset` seconds later (the project's outbox)."""
    engine = engine_for(url)
    a_moment = now() + timedelta(seconds=at - time.time())
    with engine.begin() as conn:
        for name, moment in (("A", a_moment), ("B", a_moment + timedelta(seconds=offset))):
            ids = [m for m, c in clinic_of.items() if c == name]
            conn.execute(text("UPDATE message SET due_at = :t, next_attempt_at = :t "
                              "WHERE id = ANY(:ids)"),
                         {"t": moment.replace(tzinfo=None), "ids": ids})
    engine.dispose()


def _wait_for_b(tail: ArrivalTail, clinic_of: dict[int, str], b_count: int, deadline: float,
                alive) -> None:
    """Until B's texts have all arrived, `deadline` (epoch seconds), or the sender dies."""
    def b_done() -> bool:
        return len({a.message_id for a in tail.read()
                    if clinic_of.get(a.message_id) == "B"}) >= b_count

    watch(b_done, deadline - time.time(), alive)


def measure(tail: ArrivalTail, clinic_of: dict[int, str], a_release: float, b_release: float,
            b_count: int, rate: float | None) -> dict:
    arrivals = tail.read()
    seen = Counter(a.message_id for a in arrivals)
    first: dict[int, float] = {}
    for a in arrivals:
        first.setdefault(a.message_id, a.at)
    b_times = sorted(t for m, t in first.items() if clinic_of.get(m) == "B")
    a_times = sorted(t for m, t in first.items() if clinic_of.get(m) == "A")
    b_done = len(b_times) >= b_count
    b_last = b_times[-1] if b_done else None
    window_end = b_last if b_done else arrivals[-1].at if arrivals else b_release
    a_ahead = bisect.bisect_right(a_times, window_end) - bisect.bisect_left(a_times, b_release)
    window = window_end - b_release
    doc = {
        "b_delivered": len(b_times), "b_count": b_count,
        "b_last_after_release_s": round(b_last - b_release, 2) if b_done else None,
        "b_first_after_release_s": round(b_times[0] - b_release, 2) if b_times else None,
        "a_sent_while_b_waited": a_ahead,
        "a_rate_while_b_waited_per_s": round(a_ahead / window, 1) if window > 0 else None,
        "a_sent": len(a_times),
        "a_rate_per_s": (round((len(a_times) - 1) / (a_times[-1] - a_release), 1)
                         if len(a_times) > 1 else None),
        "busiest_second": busiest_second([a.at for a in arrivals]),
        "duplicates": sum(n - 1 for m, n in seen.items() if m in clinic_of and n > 1),
        "unknown": sum(1 for a in arrivals if a.message_id not in clinic_of),
    }
    if rate:  # this order, at `rate`: everything sent between B's release and B's last
        doc["order_at_rate_s"] = round((a_ahead + len(b_times)) / rate, 1)
    return doc


def project_fairness(workdir: Path, args) -> dict:
    with temp_database("fair") as url:
        log(f"project: seeding {args.count:,} texts of clinic A and {args.b_count} of B")
        clinic_of = seed(url, args.count, args.b_count)
        with FakeTwilioProcess(workdir) as fake:
            env = worker_env(url, fake.url, SEND_RATE_PER_SECOND=args.rate)
            with running_worker(workdir / "fairness.log", env) as worker:
                a_release = time.time() + 0.5
                _release(url, clinic_of, a_release, args.offset)
                b_release = a_release + args.offset
                log(f"project: A released at {args.rate}/s, B {args.offset:.0f} s later")
                tail = ArrivalTail(fake)
                _wait_for_b(tail, clinic_of, args.b_count, b_release + args.timeout,
                            worker.alive)
                time.sleep(args.after)
                errors = worker.errors()
            doc = measure(tail, clinic_of, a_release, b_release, args.b_count, None)
    return {"rate": args.rate, "a_count": args.count, "worker_errors": errors, **doc}


def baseline_fairness(workdir: Path, args) -> dict:
    with temp_database("fairbase") as url:
        log(f"baseline: seeding {args.count:,} + {args.b_count} texts and their jobs")
        clinic_of = seed(url, args.count, args.b_count)
        due = now() + timedelta(seconds=3)  # once the scheduler's process has started
        baseline.bulk_enqueue(url, [
            (m, due + timedelta(seconds=args.offset if clinic == "B" else 0))
            for m, clinic in sorted(clinic_of.items())])
        vacuum(url)
        with FakeTwilioProcess(workdir) as fake:
            with BaselineProcesses(workdir, worker_env(url, fake.url), 1) as procs:
                a_release = max(due.timestamp(), procs.released)
                b_release = max(due.timestamp() + args.offset, procs.released)
                tail = ArrivalTail(fake)
                _wait_for_b(tail, clinic_of, args.b_count, b_release + args.timeout,
                            procs.alive)
                time.sleep(args.after)
            doc = measure(tail, clinic_of, a_release, b_release, args.b_count, args.rate)
    return {"a_count": args.count, "errors": procs.errors, **doc}


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-fair-") as tmp:
        ours = project_fairness(Path(tmp), args)
        base = None if args.skip_baseline else baseline_fairness(Path(tmp), args)
    timeout = f"> {args.timeout:.0f} s ({{}} of {args.b_count} sent)"

    def b_last(doc):
        value = doc["b_last_after_release_s"]
        return timeout.format(doc["b_delivered"]) if value is None else value

    rows = [
        ["B's last text after B's release (s)", b_last(ours), base and b_last(base),
         f"<= {TARGET_S:.0f}"],
        ["B's first text after B's release (s)", ours["b_first_after_release_s"],
         base and base["b_first_after_release_s"], ""],
        ["A's texts sent from B's release to B's last", ours["a_sent_while_b_waited"],
         base and base["a_sent_while_b_waited"], ""],
        ["A's rate meanwhile (/s)", ours["a_rate_while_b_waited_per_s"],
         base and base["a_rate_while_b_waited_per_s"], ""],
        ["busiest second, A and B together", ours["busiest_second"],
         base and f"{base['busiest_second']} (no limit)", f"<= {args.rate}"],
        ["duplicates", ours["duplicates"], base and base["duplicates"], "0"],
    ]
    if base:
        rows.append([f"baseline's order at {args.rate}/s (texts to B's last / rate, s)", "",
                     base["order_at_rate_s"], ""])
    print_table(
        f"Fairness: clinic A's {args.count:,} texts, then clinic B's {args.b_count} "
        f"{args.offset:.0f} s later, one sender at {args.rate}/s (PostgreSQL, one worker)",
        ["", "this project", "baseline (no rate limit, its own pace)", "target"],
        [[c if c is not None else "" for c in row] for row in rows])
    met = (ours["b_last_after_release_s"] is not None
           and ours["b_last_after_release_s"] <= TARGET_S
           and ours["busiest_second"] <= args.rate)
    return {"project": ours, "baseline": base, "targets": {"b_last_s": TARGET_S},
            "met": {"b_within_target": met}}
