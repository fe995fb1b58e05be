"""Steady state at scale: a large pending outbox (default 1,000,000 future messages) while
messages fall due at a steady rate (default 200/s for 60 s).

This project: one `aftercare worker` (1 s ticks); p99 lateness (arrival at the fake minus due
time), its peak memory, and the dispatch tick's cost, each at 10,000 and at the large size:
an empty tick (nothing due) and the claim of 200 due rows, with the claim's plan, to show that
an index does the work (the cost must not grow with what is pending). Baseline: the same future
and due messages as APScheduler jobs in a SQLAlchemyJobStore, 16 threads.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.common import (
    FakeTwilioProcess,
    check_delivery,
    create_clinic,
    engine_for,
    log,
    now,
    print_table,
    ratio,
    seed_clients,
    seed_messages,
    temp_database,
    vacuum,
)
from bench.wave import BaselineProcesses, enqueue_baseline
from tests.fakes.workers import Worker, wait_until, worker_env

CLIENTS = 2_000
LEAD_SECONDS = 8.0  # from seeding the due stream to its first message: the worker starts


def add_arguments(parser) -> None:
    parser.add_argument("--pending", type=int, default=1_000_000,
                        help="future messages pending in the large run")
    parser.add_argument("--small", type=int, default=10_000,
                        help="future messages pending in the small run")
    parser.add_argument("--rate", type=float, default=200.0, help="messages due per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long they fall due")
    parser.add_argument("--no-baseline", action="store_true", default=False)


def _seed_future(url: str, pending: int):
    """`pending` messages spread over the next 30 days; returns (engine, clinic id)."""
    engine = engine_for(url)
    clinic = create_clinic(engine)
    seed_clients(engine, clinic, CLIENTS)
    start = time.monotonic()
    for offset in range(0, pending, 250_000):  # in slices: one statement would hold it all
        n = min(250_000, pending - offset)
        seed_messages(engine, clinic, n, now() + timedelta(days=1) + timedelta(
            seconds=offset * 30 * 86400 / pending), spacing=30 * 86400 / pending,
            clients=CLIENTS, tag=f"future{offset}")
    vacuum(url)
    log(f"seeded {pending:,} future messages in {time.monotonic() - start:.0f} s")
    return engine, clinic


def _seed_stream(engine, clinic: int, rate: float, seconds: float) -> dict[int, float]:
    """The due stream, starting LEAD_SECONDS from now; returns {message id: due epoch}."""
    seed_messages(engine, clinic, int(rate * seconds), now() + timedelta(seconds=LEAD_SECONDS),
                  spacing=1 / rate, clients=CLIENTS, tag="stream")
    with engine.connect() as conn:
        due = dict(conn.execute(sa.text(
            "SELECT id, extract(epoch FROM due_at) FROM message WHERE dedupe_key LIKE 'stream:%'"
        )).all())
    return {k: float(v) for k, v in due.items()}


def _tick_costs(url: str, fake_url: str, engine) -> dict:
    """An empty tick (the worker's drain with nothing due), and claiming 200 due rows (rolled
    back, so each run claims the same), in this process, with the claim's plan."""
    import os

    from service import db as service_db
    from service.config import Config
    from service.messaging import outbox
    from service.messaging.dispatch import Dispatcher

    os.environ.update(worker_env(url, fake_url))
    dispatcher = Dispatcher(Config(), service_db.make_engine(url), "tick-probe")
    empty = []
    for _ in range(40):
        started = time.perf_counter()
        assert dispatcher.drain() == 0
        empty.append(time.perf_counter() - started)
    with engine.begin() as conn:  # 200 rows due now, for the claim
        conn.execute(sa.text(
            "UPDATE message SET next_attempt_at = timezone('utc', now()) - interval '1 s' "
            "WHERE id IN (SELECT id FROM message WHERE status = 'pending' "
            "ORDER BY next_attempt_at LIMIT 200)"))
    claims = []
    with engine.connect() as conn:
        for _ in range(40):
            tx = conn.begin()
            started = time.perf_counter()
            ids = outbox.claim_due(conn, "probe", now(), 200)
            claims.append(time.perf_counter() - started)
            tx.rollback()
        assert len(ids) == 200
        plan = conn.execute(sa.text(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) UPDATE message SET status = 'claimed' "
            "WHERE id IN (SELECT id FROM message WHERE status = 'pending' AND next_attempt_at "
            "<= timezone('utc', now()) ORDER BY priority, next_attempt_at LIMIT 200 "
            "FOR UPDATE SKIP LOCKED)")).scalars().all()
        conn.rollback()
    dispatcher.engine.dispose()
    return {"empty_tick_ms_p50": round(1000 * statistics.median(empty), 2),
            "claim_200_ms_p50": round(1000 * statistics.median(claims), 2),
            "claim_plan": plan}


def project_run(workdir: Path, pending: int, rate: float, seconds: float) -> dict:
    with temp_database("steady") as url:
        engine, clinic = _seed_future(url, pending)
        due = _seed_stream(engine, clinic, rate, seconds)
        with FakeTwilioProcess(workdir) as fake:
            worker = Worker(workdir / f"steady{pending}.log", worker_env(
                url, fake.url, SEND_RATE_PER_SECOND=100_000))
            try:
                wait_until(lambda: fake.count() >= len(due) or worker.proc.poll() is not None,
                           timeout=LEAD_SECONDS + seconds + 120, every=0.5,
                           what="due stream sent")
                time.sleep(1.0)
                rss = worker.peak_rss_mib()
            finally:
                worker.stop()
            delivery = check_delivery(fake.arrivals(), due)
            log(f"project at {pending:,} pending: measuring the tick")
            ticks = _tick_costs(url, fake.url, engine)
        engine.dispose()
    return {"pending": pending, **delivery.summary(), "worker_peak_rss_mib": round(rss, 1),
            **ticks}


def baseline_run(workdir: Path, pending: int, rate: float, seconds: float) -> dict:
    with temp_database("steadybase") as url:
        engine, clinic = _seed_future(url, pending)
        with engine.connect() as conn:
            jobs = [(row[0], row[1]) for row in conn.execute(sa.text(
                "SELECT id, due_at AT TIME ZONE 'UTC' FROM message ORDER BY due_at"))]
        log(f"baseline: {len(jobs):,} jobs into the job store")
        enqueue_baseline(url, jobs)
        vacuum(url)
        due = _seed_stream(engine, clinic, rate, seconds)
        with engine.connect() as conn:
            stream = [(row[0], row[1]) for row in conn.execute(sa.text(
                "SELECT id, due_at AT TIME ZONE 'UTC' FROM message "
                "WHERE dedupe_key LIKE 'stream:%' ORDER BY due_at"))]
        from bench import baseline
        baseline.bulk_enqueue(url, stream)
        with FakeTwilioProcess(workdir) as fake:
            procs = BaselineProcesses(workdir, worker_env(url, fake.url), 1)
            try:
                wait_until(lambda: fake.count() >= len(due), timeout=LEAD_SECONDS + seconds + 300,
                           every=0.5, what="baseline due stream sent")
                time.sleep(1.0)
                rss = procs.peak_rss_mib()[0]
            finally:
                procs.stop()
            delivery = check_delivery(fake.arrivals(), due)
        engine.dispose()
    return {"pending": pending, **delivery.summary(), "peak_rss_mib": rss,
            "errors": procs.errors}


def run(args) -> dict:
    sizes = [args.small, args.pending]
    ours, theirs = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-steady-") as tmp:
        for size in sizes:
            log(f"project: {size:,} pending, {args.rate:g}/s due for {args.seconds:g} s")
            ours[size] = project_run(Path(tmp), size, args.rate, args.seconds)
            if not args.no_baseline:
                log(f"baseline: {size:,} pending")
                theirs[size] = baseline_run(Path(tmp), size, args.rate, args.seconds)
    small, large = ours[sizes[0]], ours[sizes[1]]
    growth = large["claim_200_ms_p50"] / small["claim_200_ms_p50"]
    empty_growth = large["empty_tick_ms_p50"] / small["empty_tick_ms_p50"]
    rows = []
    for size in sizes:
        o, t = ours[size], theirs.get(size, {})
        rows += [
            [f"{size:,} pending: lateness p50 (s)", o["lateness_p50_s"],
             t.get("lateness_p50_s", "-"), ""],
            [f"{size:,} pending: lateness p99 (s)", o["lateness_p99_s"],
             t.get("lateness_p99_s", "-"), "<= 1.5"],
            [f"{size:,} pending: sent / duplicates / lost",
             f"{o['received']} / {o['duplicates']} / {o['lost']}",
             f"{t['received']} / {t['duplicates']} / {t['lost']}" if t else "-", "0 dup, 0 lost"],
            [f"{size:,} pending: peak memory (MiB)", o["worker_peak_rss_mib"],
             t.get("peak_rss_mib", "-"), ""],
            [f"{size:,} pending: empty tick (ms)", o["empty_tick_ms_p50"], "", ""],
            [f"{size:,} pending: claim of 200 (ms)", o["claim_200_ms_p50"], "", ""],
        ]
    rows.append([f"claim cost {sizes[1]:,} / {sizes[0]:,}", f"{growth:.2f}x", "",
                 "<= 1.5x"])
    rows.append([f"empty tick {sizes[1]:,} / {sizes[0]:,}", f"{empty_growth:.2f}x", "",
                 "<= 1.5x"])
    print_table(f"Steady state: {args.rate:g} messages/s due for {args.seconds:g} s, one worker",
                ["", "this project", "baseline (job store, 16 threads)", "target"], rows)
    print("\nclaim plan at", f"{sizes[1]:,}", "pending:\n  " + "\n  ".join(large["claim_plan"]))
    p99 = max(o["lateness_p99_s"] for o in ours.values())
    return {"rate": args.rate, "seconds": args.seconds, "project": ours, "baseline": theirs,
            "claim_cost_growth": round(growth, 2), "empty_tick_growth": round(empty_growth, 2),
            "targets": {"lateness_p99_s": 1.5, "tick_cost_growth": 1.5},
            "met": {"lateness_p99_s": p99 <= 1.5,
                    "tick_cost_growth": max(growth, empty_growth) <= 1.5},
            "lateness_p99_vs_baseline": {
                size: ratio(theirs[size]["lateness_p99_s"], ours[size]["lateness_p99_s"])
                for size in theirs}}
