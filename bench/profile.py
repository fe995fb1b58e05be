"""Where the time goes, for the README's notes on targets not met:

    python -m bench.profile            # both
    python -m bench.profile dispatch   # CPU per message: each step of a dispatch vs the ceiling
    python -m bench.profile enrol      # one enrolment through Flask, by step (pyinstrument)

Not part of `python -m bench`: it explains figures, it does not produce them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import ceiling
from bench.common import (
    FakeTwilioProcess,
    create_clinic,
    engine_for,
    log,
    now,
    print_table,
    seed_clients,
    seed_messages,
    temp_database,
    vacuum,
    write_result,
)
from tests.fakes.workers import worker_env


def _cpu(fn, n: int) -> tuple[float, object]:
    started = time.process_time()
    result = fn()
    return (time.process_time() - started) / n * 1e6, result


def dispatch(count: int = 10_000) -> dict:
    """CPU microseconds per message of each dispatch step, run one after the other in this
    process (no overlap), then of a whole Dispatcher.drain() of as many messages (the steps
    interleaved on one event loop, as in the worker), next to the bare Twilio loop's."""
    from service import db as service_db
    from service.config import Config
    from service.domain.sendtime import hold_reason
    from service.messaging import dispatch as dispatch_module
    from service.messaging import outbox
    from service.messaging.dispatch import compose, recorder
    from service.messaging.dispatch.load import send_time_facts
    from service.models import utcnow
    from service.ops import metrics

    steps = {}
    with tempfile.TemporaryDirectory() as tmp, temp_database("profile") as url:
        engine = engine_for(url)
        clinic = create_clinic(engine)
        seed_clients(engine, clinic, count)
        seed_messages(engine, clinic, count, now(), tag="steps")
        vacuum(url)
        with FakeTwilioProcess(Path(tmp)) as fake:
            os.environ.update(worker_env(url, fake.url, SEND_RATE_PER_SECOND=100_000))
            d = dispatch_module.Dispatcher(Config(), service_db.make_engine(url), "profile")

            def claim_and_load():
                batches = []
                for _ in range(count // d._batch_size()):
                    with d.engine.begin() as conn:
                        batches.append(d._claim(conn))
                return batches

            steps["claim + load (Core rows)"], loaded = _cpu(claim_and_load, count)
            moment = utcnow()

            def render():
                return [(row, compose.render(row, d.config, d.renderer)) for rows, facts in loaded
                        for row in rows if not hold_reason(send_time_facts(row, moment, facts))]

            steps["decide + render"], rendered = _cpu(render, count)

            def send_all():
                async def go():
                    sms = d.channel_factory(d.config)["sms"]
                    outgoing = iter([o for _, o in rendered])

                    async def sender():  # as the dispatcher's pool of senders
                        return [await sms.send(o) for o in outgoing]

                    try:
                        done = await asyncio.gather(*(sender() for _ in range(32)))
                    finally:
                        await sms.close()
                    return [sid for part in done for sid in part]
                return asyncio.run(go())

            steps["send (TwilioSMS, 32 senders)"], sids = _cpu(send_all, count)

            def record():
                every = recorder.RECORD_EVERY_ROWS
                for start in range(0, len(rendered), every):
                    part = rendered[start:start + every]
                    outcomes = {row.message.id: recorder.outcome(
                        row.message, "sent", True, provider_id=sid, body=o.body,
                        sent_at=utcnow()) for (row, o), sid in zip(part, sids[start:], strict=False)}
                    with d.engine.begin() as conn:
                        outbox.record(conn, outcomes)
                        recorder.after_sends(conn, [], [], [r.client.id for r, _ in part],
                                                     utcnow())
                    metrics.observe_dispatch([r.message for r, _ in part], outcomes)

            steps["record (every RECORD_EVERY_ROWS) + metrics"], _ = _cpu(record, count)
            seed_messages(engine, clinic, count, now(), tag="drain")
            drained_cpu, handled = _cpu(d.drain, count)
            assert handled == count, handled
            ceiling_started = time.process_time()
            asyncio.run(ceiling._async_loop(fake.url, count, 32))
            bare = (time.process_time() - ceiling_started) / count * 1e6
        engine.dispose()
    total = sum(steps.values())
    rows = [[name, round(us, 1), f"{us / total:.0%}"] for name, us in steps.items()]
    rows.append(["sum of the steps", round(total, 1), "100%"])
    rows.append(["a whole drain (Dispatcher.drain, steps interleaved)", round(drained_cpu, 1), ""])
    rows.append(["the ceiling: Twilio's async client alone", round(bare, 1), ""])
    rows.append(["=> best fraction of the ceiling one process can reach", f"{bare / drained_cpu:.0%}",
                 ""])
    print_table(f"CPU per message, {count:,} messages",
                ["step", "CPU us/message", "share"], rows)
    return {"cpu_us_per_message": {k: round(v, 1) for k, v in steps.items()},
            "steps_total_us": round(total, 1), "drain_us": round(drained_cpu, 1),
            "ceiling_us": round(bare, 1), "best_fraction_of_ceiling": round(bare / drained_cpu, 3)}


def enrol(requests: int = 300) -> dict:
    """One enrolment through Flask's test client on PostgreSQL, by step (pyinstrument)."""
    from pyinstrument import Profiler

    from bench.http import _api_key

    with temp_database("profileenrol") as url:
        key = _api_key(url)
        # A throwaway database: the development SECRET_KEY will do.
        os.environ.update({"DATABASE_URL": url, "LOG_LEVEL": "WARNING",
                           "AFTERCARE_ENV": "development", "API_RATE_PER_MINUTE": str(10**9)})
        from service import create_app

        client = create_app().test_client()
        headers = {"Authorization": f"Bearer {key}"}

        def body(n):
            return {"external_id": f"p-{n}", "client": {
                "name": f"Client {n}", "phone": f"+1202555{n % 10000:04d}",
                "email": f"c{n}@example.com", "sms_consent": True}, "pain_before": 5}

        for n in range(50):  # warm up
            client.post("/api/v1/visits", json=body(n), headers=headers)
        started, cpu = time.perf_counter(), time.process_time()
        for n in range(50, 50 + requests):
            assert client.post("/api/v1/visits", json=body(n), headers=headers).status_code == 201
        wall_ms = (time.perf_counter() - started) / requests * 1000
        cpu_ms = (time.process_time() - cpu) / requests * 1000
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for n in range(50 + requests, 50 + 2 * requests):
            client.post("/api/v1/visits", json=body(n), headers=headers)
        profiler.stop()
        text = profiler.output_text(unicode=False, color=False, show_all=False)
    print(f"\nEnrolment through Flask (no gunicorn, no network): {wall_ms:.1f} ms wall, "
          f"{cpu_ms:.1f} ms CPU per request\n")
    print(text)
    return {"wall_ms_per_request": round(wall_ms, 2), "cpu_ms_per_request": round(cpu_ms, 2),
            "pyinstrument": text.splitlines()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("what", nargs="*", help="dispatch, enrol (default: both)")
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args(argv)
    args.what = args.what or ["dispatch", "enrol"]
    if set(args.what) - {"dispatch", "enrol"}:
        parser.error("choose from dispatch, enrol")
    doc = {}
    if "dispatch" in args.what:
        log("profile: dispatch, step by step")
        doc["dispatch"] = dispatch(args.count)
    if "enrol" in args.what:
        log("profile: enrolment")
        doc["enrol"] = enrol()
    write_result("profile", doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
