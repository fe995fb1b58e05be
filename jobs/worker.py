"""The worker process: a few fixed APScheduler ticks, never one job per reminder.

The jobs live in memory; the outbox rows in the database are the work, and row locks share it
between any number of workers (APScheduler 3 does not support schedulers sharing a job store).
An urgent row wakes the dispatcher at once: PostgreSQL notifies every listening worker, a row
written by the worker itself signals it in-process, and a short poll covers the rest.
"""

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy.engine import URL, Engine

from service import db
from service.care import retention
from service.care.escalations import renotify
from service.messaging import outbox
from service.messaging.dispatch import Dispatcher
from service.models import utcnow
from service.ops import heartbeat, metrics

RENOTIFY_EVERY_SECONDS = 30
DISPATCH_JOB = "dispatch"
URGENT_JOB = "urgent"

log = logging.getLogger(__name__)


class SkippedDrainFilter(logging.Filter):
    """Drops APScheduler's warning that a dispatch tick was skipped because the drain before it
    still runs. A wave of 100,000 texts drains for a minute, so that is expected, and a warning
    every tick would drown the real ones; so is a quarter-second urgent poll outlasted by a slow
    database look now and then. Other jobs' skips are still logged: a reap or a heartbeat
    outlasting its interval is news."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not ("skipped: maximum number of running instances" in str(record.msg)
                    and getattr(job, "id", None) in (DISPATCH_JOB, URGENT_JOB))


SKIPPED_DRAINS = SkippedDrainFilter()


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def make_dispatcher(app: Flask) -> Dispatcher:
    config = app.extensions["aftercare.config"]
    return Dispatcher(config, db.make_engine(config.DATABASE_URL), worker_id())


def build_scheduler(app: Flask, dispatcher: Dispatcher | None = None) -> BlockingScheduler:
    config = app.extensions["aftercare.config"]
    dispatcher = dispatcher or make_dispatcher(app)
    engine = dispatcher.engine
    scheduler = BlockingScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
    )
    # The scheduler's own logger; one filter however many schedulers are built (addFilter keeps
    # a filter once).
    logging.getLogger("apscheduler.scheduler").addFilter(SKIPPED_DRAINS)
    scheduler.add_job(dispatcher.drain, "interval", seconds=config.WORKER_TICK_SECONDS,
                      id=DISPATCH_JOB, next_run_time=datetime.now(UTC))
    # An idle worker looks for urgent rows more often than for the rest (one indexed look); a
    # running drain's urgent lane looks by itself.
    scheduler.add_job(poll_urgent, "interval", args=[dispatcher, waker(scheduler, dispatcher)],
                      seconds=config.URGENT_POLL_SECONDS, id=URGENT_JOB)
    # Look for dead workers' claims a few times per timeout, so none waits much past it.
    reap_every = min(30.0, config.CLAIM_TIMEOUT_SECONDS / 4)
    scheduler.add_job(dispatcher.reap, "interval", seconds=reap_every, id="reap",
                      next_run_time=datetime.now(UTC))
    # Every worker runs it: row locks (and each alert's unique dedupe key) keep a re-send single.
    scheduler.add_job(renotify, "interval", args=[engine], seconds=RENOTIFY_EVERY_SECONDS,
                      id="renotify", next_run_time=datetime.now(UTC))
    # A few beats per staleness limit, so one slow beat does not make /readyz fail.
    scheduler.add_job(heartbeat.beat, "interval", args=[engine, worker_id()],
                      seconds=config.HEARTBEAT_STALE_SECONDS / 4, id="heartbeat",
                      next_run_time=datetime.now(UTC))
    if config.RETENTION_DAYS:
        scheduler.add_job(purge_expired, "interval", args=[engine, config.RETENTION_DAYS],
                          hours=24, id="purge", next_run_time=datetime.now(UTC))
    if config.AUDIT_RETENTION_DAYS:
        scheduler.add_job(purge_audit, "interval", args=[engine, config.AUDIT_RETENTION_DAYS],
                          hours=24, id="purge_audit", next_run_time=datetime.now(UTC))
    return scheduler


def waker(scheduler: BaseScheduler, dispatcher: Dispatcher) -> Callable[[], None]:
    """What an urgent row written wakes: the running drain's urgent lane, else a drain now."""
    def wake() -> None:
        if not dispatcher.wake() and scheduler.running:
            scheduler.modify_job(DISPATCH_JOB, next_run_time=datetime.now(UTC))
    return wake


def poll_urgent(dispatcher: Dispatcher, wake: Callable[[], None]) -> None:
    if dispatcher.urgent_waiting():
        wake()


def listen_for_urgent(engine: Engine, wake: Callable[[], None]) -> threading.Thread | None:
    """PostgreSQL: LISTEN for migration 0006's notification of each urgent row inserted, by any
    process on any host, and wake the dispatcher at once. A daemon thread on a connection of
    its own, which reconnects after a failure (meanwhile, and at start, the polls find them)."""
    if engine.dialect.name != "postgresql":
        return None
    thread = threading.Thread(target=_listen, args=(engine.url, wake), name="urgent-listener",
                              daemon=True)
    thread.start()
    return thread


def _listen(url: URL, wake: Callable[[], None]) -> None:
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    delay = 0.5
    while True:
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"LISTEN {outbox.URGENT_CHANNEL}")
                log.info("listening for urgent messages")
                delay = 0.5
                for _ in conn.notifies():
                    wake()
        except psycopg.Error as exc:
            log.warning("urgent-message listener failed, reconnecting in %.1f s: %s", delay,
                        (str(exc).splitlines() or [type(exc).__name__])[0][:200])
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def purge_expired(engine: Engine, days: int) -> None:
    counts = retention.purge(engine, utcnow() - timedelta(days=days))
    log.info("purged what is older than %d days", days, extra=counts)


def purge_audit(engine: Engine, days: int) -> None:
    gone = retention.purge_audit(engine, utcnow() - timedelta(days=days))
    log.info("purged audit events older than %d days", days, extra={"audit_events": gone})


def run(app: Flask) -> None:
    """Logging is set up by the `aftercare` command (service/ops/logs.py)."""
    config = app.extensions["aftercare.config"]
    dispatcher = make_dispatcher(app)
    scheduler = build_scheduler(app, dispatcher)
    wake = waker(scheduler, dispatcher)
    outbox.on_urgent(wake)  # an urgent row this process writes (a re-sent escalation alert)
    listen_for_urgent(dispatcher.engine, wake)  # PostgreSQL: one written anywhere
    if config.WORKER_METRICS_PORT:
        metrics.serve_worker_metrics(config.WORKER_METRICS_PORT)

    def stop(signum, _frame):
        log.info("signal %s: finishing the batches in hand, then stopping", signum)
        dispatcher.stop()  # a wave in progress is not drained to the end first
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker %s started", worker_id(),
             extra={"metrics_port": config.WORKER_METRICS_PORT or None})
    scheduler.start()
