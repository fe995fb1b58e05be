"""Crash runs at full size (tests/test_faults.py runs them smaller in `make test`).

1. A worker SIGKILLed at random moments (default 20 times) while draining 10,000 messages,
   restarted each time: none lost; duplicates at most what was in flight at each kill (sent,
   the fake has it, but not yet recorded as sent: still claimed), reported per kill.
2. The worker's PostgreSQL connections killed (pg_terminate_backend) again and again during
   dispatch: it reconnects and goes on; none lost, none twice.

The baseline is run through the same SIGKILLs for contrast (its job store deletes a job when it
starts it: a kill loses what was running and queued in its thread pool).
"""

from __future__ import annotations

import random
import socket
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

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

SETTINGS = {"SEND_RATE_PER_SECOND": 400, "CLAIM_TIMEOUT_SECONDS": 3}


def add_arguments(parser) -> None:
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20)


def _received(fake: FakeTwilioProcess) -> Counter:
    return Counter(a.message_id for a in fake.arrivals())


def sigkill_run(workdir: Path, count: int, kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    with temp_database("crash") as url:
        seed_wave(url, count)
        engine = engine_for(url)
        release_wave(engine, margin=0)
        due = due_times(engine)
        with FakeTwilioProcess(workdir) as fake:
            env = worker_env(url, fake.url, **SETTINGS)
            in_flight, stranded = [], []
            for k in range(kills):
                if left_to_send(engine) == 0:
                    break
                worker = Worker(workdir / f"victim{k}.log", env)
                seen = fake.count()
                wait_until(lambda seen=seen: fake.count() > seen or left_to_send(engine) == 0,
                           timeout=60, every=0.05, what="the worker sends")
                time.sleep(rng.uniform(0.0, 1.0))
                worker.kill()
                time.sleep(0.3)  # requests written just before the kill are still on their way
                arrived = set(_received(fake))
                with engine.connect() as conn:  # what this worker held when it died
                    claimed = set(conn.execute(sa.text(
                        "SELECT id FROM message WHERE status = 'claimed' AND claimed_by = :w"),
                        {"w": f"{socket.gethostname()}:{worker.proc.pid}"}).scalars())
                in_flight.append(len(claimed & arrived))
                stranded.append(len(claimed))
            log(f"{len(in_flight)} kills; the last worker drains the rest")
            last = Worker(workdir / "last.log", env)
            try:
                wait_until(lambda: left_to_send(engine) == 0, timeout=300, what="drained")
            finally:
                last.stop()
            received = _received(fake)
        engine.dispose()
    duplicates = sum(n - 1 for m, n in received.items() if m in due and n > 1)
    lost = len([m for m in due if m not in received])
    return {"messages": count, "kills": len(in_flight), "in_flight_at_each_kill": in_flight,
            "claimed_at_each_kill": stranded, "in_flight_total": sum(in_flight),
            "duplicates": duplicates, "lost": lost,
            "duplicates_within_in_flight": duplicates <= sum(in_flight)}


def baseline_sigkill_run(workdir: Path, count: int, kills: int, seed: int) -> dict:
    rng = random.Random(seed)
    with temp_database("crashbase") as url:
        seed_wave(url, count)
        engine = engine_for(url)
        due = due_times(engine)
        enqueue_baseline(url, [(m, now()) for m in sorted(due)])
        with FakeTwilioProcess(workdir) as fake:
            env = worker_env(url, fake.url)
            for _ in range(kills):
                procs = BaselineProcesses(workdir, env, 1)
                time.sleep(rng.uniform(0.5, 1.5))
                for proc in procs.procs:
                    proc.kill()
                    proc.wait()
                for log_file in procs.logs:
                    log_file.close()
            procs = BaselineProcesses(workdir, env, 1)
            progress = [fake.count(), time.monotonic()]

            def settled() -> bool:  # nothing left in the job store, or nothing moving
                with engine.connect() as conn:
                    jobs = conn.execute(sa.text("SELECT count(*) FROM apscheduler_jobs")).scalar()
                sent = fake.count()
                if sent != progress[0]:
                    progress[:] = [sent, time.monotonic()]
                return jobs == 0 and time.monotonic() - progress[1] > 3

            try:
                wait_until(settled, timeout=600, every=0.5, what="baseline settled")
            finally:
                procs.stop()
            received = _received(fake)
        engine.dispose()
    return {"messages": count, "kills": kills,
            "duplicates": sum(n - 1 for m, n in received.items() if m in due and n > 1),
            "lost": len([m for m in due if m not in received])}


def connection_kill_run(workdir: Path, count: int) -> dict:
    with temp_database("pgkill") as url:
        seed_wave(url, count)
        engine = engine_for(url)
        victim = f"{url}?application_name=aftercare-bench-victim"
        with FakeTwilioProcess(workdir) as fake:
            worker = Worker(workdir / "pgvictim.log", worker_env(victim, fake.url, **SETTINGS))
            killed, stop = [], threading.Event()

            def killer():
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    while not stop.wait(0.2):
                        pids = conn.execute(sa.text(
                            "SELECT pid FROM pg_stat_activity WHERE application_name = "
                            "'aftercare-bench-victim' AND usename = current_user")).scalars().all()
                        for pid in pids:
                            if conn.execute(sa.text("SELECT pg_terminate_backend(:p)"),
                                            {"p": pid}).scalar():
                                killed.append(pid)

            thread = threading.Thread(target=killer)
            try:
                worker.wait_ready()
                release_wave(engine, margin=0.5)
                thread.start()
                wait_until(lambda: left_to_send(engine) == 0, timeout=600, what="drained")
            finally:
                stop.set()
                if thread.is_alive():
                    thread.join()
                worker.stop()
            retries = worker.log_path.read_text().count("database unavailable")
            received = _received(fake)
            due = due_times(engine)
        engine.dispose()
    return {"messages": count, "connections_killed": len(killed), "retries_logged": retries,
            "duplicates": sum(n - 1 for m, n in received.items() if m in due and n > 1),
            "lost": len([m for m in due if m not in received])}


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp:
        log(f"SIGKILL {args.kills} times while draining {args.count:,}")
        kill = sigkill_run(Path(tmp), args.count, args.kills, args.seed)
        log("baseline through the same kind of kills")
        base = baseline_sigkill_run(Path(tmp), min(args.count, 5_000), min(args.kills, 5),
                                    args.seed)
        log("PostgreSQL connections killed during dispatch")
        pg = connection_kill_run(Path(tmp), args.count)
    print_table(
        "Crash runs",
        ["", "this project", "baseline", "target"],
        [
            [f"SIGKILL x{kill['kills']} while draining {kill['messages']:,}: lost", kill["lost"],
             f"{base['lost']} (of {base['messages']:,}, {base['kills']} kills)", "0"],
            ["... sent twice", kill["duplicates"], base["duplicates"],
             f"<= in flight at the kills ({kill['in_flight_total']})"],
            ["... in flight (sent, unrecorded) at each kill",
             " ".join(map(str, kill["in_flight_at_each_kill"])), "", ""],
            [f"PostgreSQL connections killed x{pg['connections_killed']}: lost / twice",
             f"{pg['lost']} / {pg['duplicates']}", "", "0 / 0"],
        ],
    )
    return {"sigkill": kill, "baseline_sigkill": base, "connection_kills": pg,
            "met": {"sigkill_none_lost": kill["lost"] == 0,
                    "sigkill_duplicates_within_in_flight": kill["duplicates_within_in_flight"],
                    "connection_kills_none_lost_none_twice":
                        pg["lost"] == 0 and pg["duplicates"] == 0}}
