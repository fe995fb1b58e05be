"""The worker process: a few fixed APScheduler ticks, never one job per reminder.

The jobs live in memory; the outbox rows in the database are the work, and row locks share it
between any number of workers (APScheduler 3 does not support schedulers sharing a job store).
"""

import logging
import os
import signal
import socket
from datetime import UTC, datetime

from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from service import db
from service.dispatch import Dispatcher
from service.escalations import renotify

RENOTIFY_EVERY_SECONDS = 30

log = logging.getLogger(__name__)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def build_scheduler(app: Flask) -> BlockingScheduler:
    config = app.extensions["aftercare.config"]
    engine = db.make_engine(config.DATABASE_URL)
    dispatcher = Dispatcher(config, engine, worker_id())
    scheduler = BlockingScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
    )
    scheduler.add_job(dispatcher.drain, "interval", seconds=config.WORKER_TICK_SECONDS,
                      id="dispatch", next_run_time=datetime.now(UTC))
    # Look for dead workers' claims a few times per timeout, so none waits much past it.
    reap_every = min(30.0, config.CLAIM_TIMEOUT_SECONDS / 4)
    scheduler.add_job(dispatcher.reap, "interval", seconds=reap_every, id="reap",
                      next_run_time=datetime.now(UTC))
    # Every worker runs it: row locks (and each alert's unique dedupe key) keep a re-send single.
    scheduler.add_job(renotify, "interval", args=[engine], seconds=RENOTIFY_EVERY_SECONDS,
                      id="renotify", next_run_time=datetime.now(UTC))
    return scheduler


def run(app: Flask) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = build_scheduler(app)

    def stop(signum, _frame):
        log.info("signal %s: finishing the current batch, then stopping", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker %s started", worker_id())
    scheduler.start()
