"""Scale-out: 1, 2 and 4 workers on PostgreSQL against the same wave (throughput, duplicates),
and the baseline run the way that design would scale: two schedulers on one job store, which
APScheduler 3 does not support (expect duplicates and errors)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import log, print_table, ratio
from bench.wave import baseline_wave, project_wave


def add_arguments(parser) -> None:
    parser.add_argument("--count", type=int, default=100_000, help="messages in the wave")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run")
    parser.add_argument("--baseline-count", type=int, default=20_000,
                        help="messages for the two-scheduler baseline")


def run(args) -> dict:
    counts = [int(n) for n in args.workers.split(",")]
    ours = {}
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        for n in counts:
            log(f"project: {n} worker(s), {args.count:,} messages")
            ours[n] = project_wave(Path(tmp), args.count, workers=n)
        log(f"baseline: 1 and 2 schedulers on one job store, {args.baseline_count:,} messages")
        one = baseline_wave(Path(tmp), args.baseline_count, schedulers=1)
        two = baseline_wave(Path(tmp), args.baseline_count, schedulers=2)
    first = ours[counts[0]]["rate_per_s"]
    rows = [[f"{n} worker(s)", o["rate_per_s"], ratio(o["rate_per_s"], first), o["drain_s"],
             o["duplicates"], o["lost"], o["worker_errors"], f"{sum(o['worker_cpu_pct'])}%"]
            for n, o in ours.items()]
    for name, b in (("baseline, 1 scheduler", one), ("baseline, 2 schedulers, 1 job store", two)):
        errors = sum(e["tracebacks"] for e in b["errors"].values())
        lookups = sum(e["JobLookupError"] for e in b["errors"].values())
        rows.append([name, b["rate_per_s"], ratio(b["rate_per_s"], one["rate_per_s"]),
                     b["drain_s"], b["duplicates"], b["lost"],
                     f"{errors} tracebacks, {lookups} JobLookupError", ""])
    print_table(f"Scale-out: the same wave ({args.count:,} messages; baseline "
                f"{args.baseline_count:,}), PostgreSQL, 2 cores",
                ["", "messages/s", "vs 1", "drain (s)", "duplicates", "lost", "errors",
                 "worker CPU"], rows)
    return {"count": args.count, "project": ours, "baseline_one_scheduler": one,
            "baseline_two_schedulers": two,
            "targets": {"duplicates": 0},
            "met": {"duplicates": all(o["duplicates"] == 0 and o["lost"] == 0
                                      for o in ours.values())}}
