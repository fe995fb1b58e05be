"""The baseline: the design a newcomer to these packages writes first.

One APScheduler job per reminder, kept in APScheduler's SQLAlchemyJobStore on PostgreSQL, run by
a BackgroundScheduler with 16 threads; each job loads its message, renders it with the project's
own templates and sends it through Twilio's (sync) client to the same fake, then marks the row
sent. It shares the outbox table with the project only so that both designs render and record the
same rows; the schedule itself lives in the job store, as that design has it.

    python -c "from bench.baseline import main; main()"   # runs until SIGTERM

prints "released <epoch seconds>" when its scheduler starts.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import update
from sqlmodel import Session, create_engine
from twilio.rest import Client as TwilioClient

from service.config import Config
from service.messaging.dispatch import Dispatcher
from service.messaging.dispatch.compose import render
from service.messaging.dispatch.load import claimed_rows
from service.models import Message, utcnow

THREADS = 16
_state: dict = {}
_local = threading.local()


def _twilio() -> TwilioClient:
    """One sync client per thread (requests' Session is not thread-safe)."""
    if not hasattr(_local, "client"):
        config: Config = _state["config"]
        client = TwilioClient(config.TWILIO_ACCOUNT_SID, config.TWILIO_AUTH_TOKEN)
        client.api.base_url = config.TWILIO_API_BASE_URL
        _local.client = client
    return _local.client


def send_reminder(message_id: int) -> None:
    """The job: one reminder, start to finish. It reads its rows with the project's own loader
    (one joined query) and renders with the project's templates: the two designs differ in how
    work is scheduled and sent, not in how a row is read or a text written."""
    config: Config = _state["config"]
    with Session(_state["engine"]) as session:
        [row] = claimed_rows(session, [message_id])
        message = row.message
        if message.status != "pending":
            return
        if row.client.sms_opted_out_at:
            _update(session, message_id, status="cancelled")
            return
        dispatcher = _state["renderer"]
        outgoing = render(row, dispatcher.config, dispatcher.renderer)
        sent = _twilio().messages.create(to=outgoing.to, from_=config.TWILIO_FROM_NUMBER,
                                         body=outgoing.body,
                                         status_callback=outgoing.status_callback)
        _update(session, message_id, status="sent", provider_id=sent.sid, body=outgoing.body,
                sent_at=utcnow(), attempts=message.attempts + 1)


def _update(session: Session, message_id: int, **values) -> None:
    session.execute(update(Message).where(Message.id == message_id).values(**values))
    session.commit()


def send_planned(visit_id: int, kind: str, channel: str) -> None:
    """The job the baseline's enrolment adds per planned message (bench/baseline_web.py); the
    HTTP benchmark measures adding it, not running it."""


def scheduler(url: str, threads: int = THREADS) -> BackgroundScheduler:
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        executors={"default": ThreadPoolExecutor(threads)},
        job_defaults={"misfire_grace_time": None, "coalesce": False, "max_instances": 1},
        timezone=UTC,
    )


class _EnqueueOnly(BackgroundScheduler):
    """A scheduler that only adds jobs (as a web process of that design does), never runs one:
    a paused BackgroundScheduler still processes due jobs once when it is shut down."""

    def _process_jobs(self):
        return None


class _Polling(BackgroundScheduler):
    """Looks at its job store at least every `poll` seconds. APScheduler 3 is not told of a job
    that another process (the design's web app) adds: without this, a reply's job would wait for
    the next job the scheduler already knew of, or for ever (bench/urgent.py sets it)."""

    poll = 1.0

    def _process_jobs(self):
        wait = super()._process_jobs()
        return self.poll if wait is None else min(wait, self.poll)


def create_job_store(url: str) -> None:
    """The job store's table, made once (processes starting together would race to make it)."""
    sched = scheduler(url)
    sched.__class__ = _EnqueueOnly
    sched.start(paused=True)
    sched.shutdown(wait=False)


def enqueue(url: str, jobs: list[tuple[int, datetime]]) -> float:
    """What the naive design's enrolment does per reminder: add a job. Returns jobs/s."""
    sched = scheduler(url)
    sched.__class__ = _EnqueueOnly
    sched.start(paused=True)
    start = time.perf_counter()
    for message_id, due in jobs:
        sched.add_job(send_reminder, "date", run_date=due, args=[message_id],
                      id=f"message-{message_id}")
    elapsed = time.perf_counter() - start
    sched.shutdown(wait=False)
    return len(jobs) / elapsed if elapsed else float("nan")


def bulk_enqueue(url: str, jobs: list[tuple[int, datetime]], chunk: int = 10_000) -> None:
    """The same rows add_job writes (one pickled Job each), inserted in bulk: a million jobs at
    add_job's pace would take a quarter of an hour to set up."""
    sched = scheduler(url)
    sched.__class__ = _EnqueueOnly
    sched.start(paused=True)
    first_id, first_due = jobs[0]
    template = sched.add_job(send_reminder, "date", run_date=first_due, args=[first_id],
                             id="template")
    state = template.__getstate__()
    sched.remove_job("template")
    store = sched._lookup_jobstore("default")
    with store.engine.begin() as conn:
        for start in range(0, len(jobs), chunk):
            rows = []
            for message_id, due in jobs[start:start + chunk]:
                job_state = {**state, "id": f"message-{message_id}", "args": (message_id,),
                             "trigger": DateTrigger(run_date=due, timezone=UTC),
                             "next_run_time": due}
                rows.append({"id": job_state["id"], "next_run_time": datetime_to_utc_timestamp(due),
                             "job_state": pickle.dumps(job_state, store.pickle_protocol)})
            conn.execute(store.jobs_t.insert(), rows)
    sched.shutdown(wait=False)


def main() -> None:
    config = Config()
    _state["config"] = config
    _state["engine"] = create_engine(config.DATABASE_URL, pool_size=THREADS, max_overflow=4)
    _state["renderer"] = Dispatcher(config, _state["engine"], "baseline")
    threads = int(os.environ.get("BASELINE_THREADS", THREADS))
    sched = scheduler(config.DATABASE_URL, threads)
    if poll := float(os.environ.get("BASELINE_POLL_SECONDS", 0)):
        sched.__class__ = _Polling
        sched.poll = poll
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sched.start()
    print(f"released {time.time()}", flush=True)
    stop.wait()
    sched.shutdown(wait=False)
    sys.stdout.flush()
    os._exit(0)  # the executor's queue may still hold thousands of jobs: do not run them


if __name__ == "__main__":
    main()
