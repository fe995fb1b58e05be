"""The worker process: a few fixed APScheduler ticks, never one job per reminder.

The jobs live in memory; the outbox rows in the database are the work, and row locks share it
between any number of workers (APScheduler 3 does not support schedulers sharing a job store).
"""

import logging
import os
import signal
import socket
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy.engine import Engine

from service import db, heartbeat, metrics, retention
from service.dispatch import Dispatcher
from service.escalations import renotify
from service.models import utcnow

RENOTIFY_EVERY_SECONDS = 30
DISPATCH_JOB = "dispatch"

log = logging.getLogger(__name__)


class SkippedDrainFilter(logging.Filter):
    """Drops APScheduler's warning that a dispatch tick was skipped because the drain before it
    still runs. A wave of 100,000 texts drains for a minute, so that is expected, and a warning
    every tick would drown the real ones. Other jobs' skips are still logged: a reap or a
    heartbeat outlasting its interval is news."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not ("skipped: maximum number of running instances" in str(record.msg)
                    and getattr(job, "id", None) == DISPATCH_JOB)


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
    return scheduler


def purge_expired(engine: Engine, days: int) -> None:
    counts = retention.purge(engine, utcnow() - timedelta(days=days))
    log.info("purged what is older than %d days", days, extra=counts)


def run(app: Flask) -> None:
    """Logging is set up by the `aftercare` command (service/logs.py)."""
    config = app.extensions["aftercare.config"]
    dispatcher = make_dispatcher(app)
    scheduler = build_scheduler(app, dispatcher)
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
