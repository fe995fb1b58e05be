"""The worker's scheduler while a drain outlasts its tick: the skipped ticks are not logged."""

import logging
from collections import defaultdict
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED
from apscheduler.executors.base import BaseExecutor

from jobs.worker import DISPATCH_JOB, build_scheduler


class NeverFinishes(BaseExecutor):
    """Runs nothing: every job submitted stays running, like a drain through a long wave."""

    def _do_submit_job(self, job, run_times):
        pass


def test_a_skipped_dispatch_tick_is_not_logged_but_another_jobs_skip_is(app, dispatcher, caplog):
    """The real scheduler, driven by its own events: the dispatch and reap jobs are submitted,
    made due again at once while still running, so both are skipped; then it stops."""
    scheduler = build_scheduler(app, dispatcher)
    scheduler.add_executor(NeverFinishes())
    again = (DISPATCH_JOB, "reap")
    events = defaultdict(list)

    def on_event(event):
        events[event.job_id].append(event.code)
        if event.job_id in again and len(events[event.job_id]) == 1:
            scheduler.modify_job(event.job_id, next_run_time=datetime.now(UTC))
        if all(len(events[job]) == 2 for job in again):
            scheduler.shutdown(wait=False)  # start() returns

    scheduler.add_listener(on_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES)
    with caplog.at_level(logging.WARNING, logger="apscheduler"):
        scheduler.start()

    assert all(events[job] == [EVENT_JOB_SUBMITTED, EVENT_JOB_MAX_INSTANCES] for job in again)
    skips = [record for record in caplog.records if "skipped" in record.getMessage()]
    assert [record.args[0].id for record in skips] == ["reap"]
    assert skips[0].levelno == logging.WARNING
