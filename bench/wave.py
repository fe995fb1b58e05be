"""The 08:00 wave: N messages become due at once (quiet hours ending).

This project: `aftercare worker` processes already running and idle; one UPDATE makes every row
due at the same moment; drain time, rate and lateness (arrival at the fake minus due time).
Baseline: the same rows as one APScheduler job each in a SQLAlchemyJobStore (enqueued first,
timed), released when its scheduler starts. Ceiling: Twilio's async client alone, 32 in flight.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import text

from bench import baseline, ceiling
from bench.common import (
    PYTHON,
    ROOT,
    FakeTwilioProcess,
    check_delivery,
    due_times,
    engine_for,
    left_to_send,
    log,
    now,
    print_table,
    ratio,
    release_wave,
    seed_clinic,
    temp_database,
    vacuum,
)
from tests.fakes.workers import Worker, peak_rss_mib, wait_until, worker_env

# Rate limiting stays switched on, with a limit far above what one worker can send.
WAVE_SETTINGS = {"SEND_RATE_PER_SECOND": 100_000}


def add_arguments(parser) -> None:
    parser.add_argument("--count", type=int, default=100_000, help="messages in the wave")
    parser.add_argument("--baseline-count", type=int, default=None,
                        help="messages for the baseline (default: --count)")
    parser.add_argument("--ceiling-count", type=int, default=30_000)


def seed_wave(url: str, count: int) -> None:
    engine = engine_for(url)
    seed_clinic(engine, count)
    engine.dispose()
    vacuum(url)


def project_wave(workdir: Path, count: int, workers: int = 1, **settings) -> dict:
    """Seed, start `workers` idle workers, release the wave, wait until it is drained."""
    with temp_database("wave") as url:
        log(f"project: seeding {count:,} messages")
        seed_wave(url, count)
        engine = engine_for(url)
        with FakeTwilioProcess(workdir) as fake:
            env = worker_env(url, fake.url, **{**WAVE_SETTINGS, **settings})
            procs = [Worker(workdir / f"worker{i}.log", env) for i in range(workers)]
            try:
                for proc in procs:
                    proc.wait_ready()
                cpu0 = [p.cpu() for p in procs], fake.cpu()
                released = release_wave(engine, margin=1.0 + count / 40_000).timestamp()
                log(f"project: released {count:,} with {workers} worker(s)")
                wait_until(lambda: left_to_send(engine) == 0, timeout=120 + count / 50,
                           every=0.5, what="wave drained")
                elapsed = time.time() - released
                cpu = [p.cpu() - c for p, c in zip(procs, cpu0[0], strict=True)]
                fake_cpu = fake.cpu() - cpu0[1]
                rss = [p.peak_rss_mib() for p in procs]
                errors = sum(p.errors() for p in procs)
            finally:
                for proc in procs:
                    proc.stop()
            time.sleep(0.5)
            delivery = check_delivery(fake.arrivals(), due_times(engine))
        engine.dispose()
    doc = delivery.summary(released)
    doc.update(workers=workers, worker_cpu_pct=[round(100 * c / elapsed) for c in cpu],
               fake_cpu_pct=round(100 * fake_cpu / elapsed), worker_peak_rss_mib=rss,
               worker_errors=errors)
    return doc


ENQUEUE_SAMPLE = 5_000  # jobs added one by one with add_job (timed); the rest in bulk


def enqueue_baseline(url: str, jobs: list[tuple[int, datetime]]) -> float:
    """Puts one APScheduler job per message in the job store; returns add_job's rate (jobs/s)
    measured on the first ENQUEUE_SAMPLE (the rest go in bulk: same rows, less waiting)."""
    rate = baseline.enqueue(url, jobs[:ENQUEUE_SAMPLE])
    if jobs[ENQUEUE_SAMPLE:]:
        baseline.bulk_enqueue(url, jobs[ENQUEUE_SAMPLE:])
    return rate


class BaselineProcesses:
    """n baseline schedulers on one job store, each a process; errors counted from their logs
    up to the moment they are told to stop (stop(), or the end of a `with` block)."""

    def __init__(self, workdir: Path, env: dict, n: int):
        self.workdir, self.procs, self.logs = workdir, [], []
        for i in range(n):
            self.logs.append(open(workdir / f"baseline{i}.log", "w"))
            self.procs.append(subprocess.Popen(
                [PYTHON, "-c", "from bench.baseline import main; main()"], cwd=ROOT, env=env,
                stdout=subprocess.PIPE, stderr=self.logs[-1], text=True))
        self.released = min(float(p.stdout.readline().split()[1]) for p in self.procs)
        self.errors: dict = {}

    def __enter__(self) -> BaselineProcesses:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def peak_rss_mib(self) -> list[float]:
        return [round(peak_rss_mib(p.pid), 1) for p in self.procs]

    def stop(self) -> None:
        for i, log_file in enumerate(self.logs):
            log_file.flush()
            text_ = (self.workdir / f"baseline{i}.log").read_text()
            self.errors[f"scheduler{i}"] = {
                "tracebacks": text_.count("Traceback"),
                "JobLookupError": text_.count("JobLookupError"),
                "error_lines": sum(1 for line in text_.splitlines() if "Error" in line),
            }
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log_file in self.logs:
            log_file.close()


def baseline_wave(workdir: Path, count: int, schedulers: int = 1) -> dict:
    """The naive design on the same rows: one job each (enqueue timed), released by starting
    the scheduler(s) on one job store."""
    with temp_database("wavebase") as url:
        log(f"baseline: seeding {count:,} messages")
        seed_wave(url, count)
        engine = engine_for(url)
        due = due_times(engine)
        t0 = now()
        log(f"baseline: enqueueing {count:,} APScheduler jobs")
        enqueue_rate = enqueue_baseline(url, [(m, t0) for m in sorted(due)])
        with engine.begin() as conn:
            conn.execute(text("UPDATE message SET due_at = :t, next_attempt_at = :t"),
                         {"t": t0.replace(tzinfo=None)})
        vacuum(url)
        with FakeTwilioProcess(workdir) as fake:
            procs = BaselineProcesses(workdir, worker_env(url, fake.url), schedulers)
            released = procs.released
            log(f"baseline: released with {schedulers} scheduler(s)")
            start_cpu = fake.cpu()
            progress = [0, time.monotonic()]

            def done() -> bool:
                sent = fake.count()
                if sent >= count and _pending(engine) == 0:
                    return True
                if sent != progress[0]:
                    progress[:] = [sent, time.monotonic()]
                elif time.monotonic() - progress[1] > 20:  # stuck: report what happened
                    return True
                return False

            try:
                wait_until(done, timeout=300 + count / 20, every=0.5, what="baseline drained")
                elapsed = time.time() - released
                fake_cpu = fake.cpu() - start_cpu
                rss = procs.peak_rss_mib()
            finally:
                procs.stop()
            time.sleep(0.5)
            arrivals = fake.arrivals()
        delivery = check_delivery(arrivals, {m: released for m in due})
        engine.dispose()
    doc = delivery.summary(released)
    doc.update(schedulers=schedulers, threads=baseline.THREADS,
               enqueue_jobs_per_s=round(enqueue_rate, 1),
               fake_cpu_pct=round(100 * fake_cpu / elapsed), peak_rss_mib=rss,
               errors=procs.errors)
    return doc


def _pending(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM message WHERE status = 'pending'")).scalar()


def ceiling_rates(workdir: Path, count: int) -> dict:
    with FakeTwilioProcess(workdir) as fake:
        cpu0 = fake.cpu()
        t0 = time.perf_counter()
        async_rate = ceiling.async_rate(fake.url, count)
        fake_cpu = (fake.cpu() - cpu0) / (time.perf_counter() - t0)
        sync_rate = ceiling.sync_rate(fake.url, min(count, 5000))
    return {"async_32_in_flight_per_s": round(async_rate, 1),
            "sync_1_thread_per_s": round(sync_rate, 1), "fake_cpu_pct": round(100 * fake_cpu)}


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-wave-") as tmp:
        workdir = Path(tmp)
        log("ceiling: Twilio's library alone")
        ceiling_doc = ceiling_rates(workdir, args.ceiling_count)
        ours = project_wave(workdir, args.count)
        base = baseline_wave(workdir, args.baseline_count or args.count)
        log("ceiling again (the machine is shared: both ends of the run)")
        ceiling_after = ceiling_rates(workdir, args.ceiling_count)
    ceiling_rate = (ceiling_doc["async_32_in_flight_per_s"]
                    + ceiling_after["async_32_in_flight_per_s"]) / 2
    fraction = ours["rate_per_s"] / ceiling_rate
    multiple = ours["rate_per_s"] / base["rate_per_s"]
    print_table(
        f"08:00 wave: {args.count:,} messages due at once (baseline {base['messages']:,}), "
        "one worker, PostgreSQL",
        ["", "this project", "baseline (APScheduler job per reminder, 16 threads)",
         "ceiling (async Twilio client alone)", "target"],
        [
            ["messages/s", ours["rate_per_s"], base["rate_per_s"], ceiling_rate, ""],
            ["drain time (s)", ours["drain_s"], base["drain_s"], "", ""],
            ["lateness p50 (s)", ours["lateness_p50_s"], base["lateness_p50_s"], "", ""],
            ["lateness p99 (s)", ours["lateness_p99_s"], base["lateness_p99_s"], "", ""],
            ["duplicates / lost", f"{ours['duplicates']} / {ours['lost']}",
             f"{base['duplicates']} / {base['lost']}", "", "0 / 0"],
            ["fraction of ceiling", f"{fraction:.0%}", "", "100%", ">= 80%"],
            ["multiple of baseline", ratio(ours["rate_per_s"], base["rate_per_s"]), "1x", "",
             ">= 4x"],
            ["enqueue (jobs/s)", "(rows are written by enrolment)",
             base["enqueue_jobs_per_s"], "", ""],
            ["fake server CPU", f"{ours['fake_cpu_pct']}%", f"{base['fake_cpu_pct']}%",
             f"{ceiling_doc['fake_cpu_pct']}%", "< 100% (not the bottleneck)"],
            ["sync client, 1 thread", "", "", ceiling_doc["sync_1_thread_per_s"], ""],
        ],
    )
    return {"count": args.count, "project": ours, "baseline": base,
            "ceiling": {"before": ceiling_doc, "after": ceiling_after,
                        "async_per_s": ceiling_rate},
            "fraction_of_ceiling": round(fraction, 3), "multiple_of_baseline": round(multiple, 2),
            "targets": {"fraction_of_ceiling": 0.8, "multiple_of_baseline": 4.0},
            "met": {"fraction_of_ceiling": fraction >= 0.8, "multiple_of_baseline": multiple >= 4}}
