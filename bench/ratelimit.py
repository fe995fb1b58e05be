"""Rate limit honoured: with SEND_RATE_PER_SECOND = N, the fake never sees more than N requests in
any one-second window (sliding, over arrival times). The baseline (a thread pool with no limit of
its own, as that design comes) is shown for contrast on the same messages."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import (
    FakeTwilioProcess,
    due_times,
    engine_for,
    log,
    now,
    print_table,
    release_wave,
    temp_database,
)
from bench.wave import BaselineProcesses, enqueue_baseline, seed_wave
from tests.fakes.workers import Worker, wait_until, worker_env


def add_arguments(parser) -> None:
    parser.add_argument("--rates", default="10,30,100", help="configured sends per second")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="how long each rate is held (messages = rate x seconds)")


def busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def _project(workdir: Path, rate: int, count: int) -> dict:
    with temp_database("rate") as url:
        seed_wave(url, count)
        engine = engine_for(url)
        with FakeTwilioProcess(workdir) as fake:
            worker = Worker(workdir / f"rate{rate}.log", worker_env(url, fake.url,
                                                                SEND_RATE_PER_SECOND=rate))
            try:
                worker.wait_ready()
                release_wave(engine, margin=0.5)
                wait_until(lambda: fake.count() >= count, timeout=30 + 2 * count / rate,
                           what="all sent")
            finally:
                worker.stop()
            times = [a.at for a in fake.arrivals()]
        engine.dispose()
    span = max(times) - min(times)
    return {"configured": rate, "messages": count, "busiest_second": busiest_second(times),
            "average_per_s": round((len(times) - 1) / span, 2) if span else None}


def _baseline(workdir: Path, count: int) -> dict:
    with temp_database("ratebase") as url:
        seed_wave(url, count)
        engine = engine_for(url)
        due = due_times(engine)
        enqueue_baseline(url, [(m, now()) for m in sorted(due)])
        with FakeTwilioProcess(workdir) as fake:
            procs = BaselineProcesses(workdir, worker_env(url, fake.url), 1)
            try:
                wait_until(lambda: fake.count() >= count, timeout=120, what="baseline sent")
            finally:
                procs.stop()
            times = [a.at for a in fake.arrivals()]
        engine.dispose()
    return {"messages": count, "busiest_second": busiest_second(times)}


def run(args) -> dict:
    rates = [int(r) for r in args.rates.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-rate-") as tmp:
        for rate in rates:
            log(f"project: SEND_RATE_PER_SECOND={rate}")
            results.append(_project(Path(tmp), rate, int(rate * args.seconds)))
            time.sleep(0.2)
        log("baseline: no limit of its own")
        base = _baseline(Path(tmp), int(max(rates) * args.seconds))
    rows = [[f"configured {r['configured']}/s", r["busiest_second"], r["average_per_s"],
             "yes" if r["busiest_second"] <= r["configured"] else "NO",
             f"<= {r['configured']}"] for r in results]
    rows.append(["baseline (no limit)", base["busiest_second"], "", "-", ""])
    print_table("Rate limit: the most requests the fake saw in any one second",
                ["", "busiest second", "average/s", "honoured", "target"], rows)
    return {"project": results, "baseline": base,
            "met": {"never_exceeded": all(r["busiest_second"] <= r["configured"]
                                          for r in results)}}
