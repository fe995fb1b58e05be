"""/healthz and /readyz: readiness names what is wrong (database, migrations, worker heartbeat),
and the worker's heartbeat job keeps it ready."""

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from freezegun import freeze_time

from jobs.worker import build_scheduler
from service import db
from service.models import Message, WorkerHeartbeat
from service.ops import heartbeat
from tests.conftest import BOTH_BACKENDS, NO_PROVIDERS

NOW = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)


def test_healthz_answers_without_the_database():
    from service import create_app

    app = create_app({**NO_PROVIDERS, "DATABASE_URL": "postgresql+psycopg://x:y@127.0.0.1:1/none"})
    assert app.test_client().get("/healthz").get_json() == {"status": "ok"}


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_ready_once_a_worker_beats_and_unready_when_it_stops(app, client):
    engine = app.extensions["aftercare.engine"]
    with freeze_time(NOW):
        heartbeat.beat(engine, "host-a:1")
        heartbeat.beat(engine, "host-a:1")  # the same row, freshened
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "oldest_due_seconds": 0, "checks": {
        "database": "ok", "migrations": "ok", "worker": "ok", "dispatch": "ok"}}

    with freeze_time(NOW + timedelta(seconds=61)):
        stale = client.get("/readyz")
    assert stale.status_code == 503
    body = stale.get_json()
    assert body["status"] == "unready" and body["failed"] == ["worker"]
    assert body["checks"]["worker"] == "the latest worker heartbeat is 61 s old (limit 60 s)"


def due_message(session, clinic, due_at, **fields) -> Message:
    fields = {"kind": "checkin", **fields}
    row = Message(clinic_id=clinic.id, channel="sms", recipient="+12025550123", due_at=due_at,
                  next_attempt_at=due_at, dedupe_key=f"due:{uuid.uuid4()}", **fields)
    session.add(row)
    session.commit()
    return row


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_stalled_dispatch_is_unready_while_a_worker_beats(app, client, session, clinic):
    """A live heartbeat proves a worker runs, not that it sends: the oldest due message's wait
    is the proof, and /readyz names it."""
    engine = app.extensions["aftercare.engine"]
    due_message(session, clinic[0], NOW - timedelta(seconds=300))
    due_message(session, clinic[0], NOW + timedelta(hours=1))  # not due: never counts
    due_message(session, clinic[0], NOW - timedelta(hours=2), status="sent")  # done
    with freeze_time(NOW):
        heartbeat.beat(engine, "host-a:1")
        at_limit = client.get("/readyz")
    assert at_limit.status_code == 200
    assert at_limit.get_json()["oldest_due_seconds"] == 300

    with freeze_time(NOW + timedelta(seconds=1)):
        heartbeat.beat(engine, "host-a:1")
        stalled = client.get("/readyz")
    assert stalled.status_code == 503
    body = stalled.get_json()
    assert body["failed"] == ["dispatch"] and body["checks"]["worker"] == "ok"
    assert body["oldest_due_seconds"] == 301
    assert body["checks"]["dispatch"] == ("the oldest due message has waited 301 s (limit 300 s) "
                                          "and nothing is being sent: dispatch is stalled")


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_wave_far_behind_while_sending_is_ready(app, client, session, clinic):
    """A rate-limited wave keeps routine texts waiting while the worker sends all it may: the web
    app (and the webhook that carries a red flag) must stay in rotation."""
    engine = app.extensions["aftercare.engine"]
    due_message(session, clinic[0], NOW - timedelta(minutes=40))
    due_message(session, clinic[0], NOW - timedelta(minutes=40), status="claimed",
                claimed_at=NOW - timedelta(seconds=2), claimed_by="host-a:1")
    with freeze_time(NOW):
        heartbeat.beat(engine, "host-a:1")
        behind = client.get("/readyz")
    assert behind.status_code == 200 and behind.get_json()["oldest_due_seconds"] == 2400

    with freeze_time(NOW + timedelta(minutes=6)):  # the claim hung: nothing recorded since
        heartbeat.beat(engine, "host-a:1")
        hung = client.get("/readyz")
    assert hung.status_code == 503 and hung.get_json()["failed"] == ["dispatch"]


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_an_urgent_message_waiting_is_unready_even_while_sending(app, client, session, clinic):
    engine = app.extensions["aftercare.engine"]
    due_message(session, clinic[0], NOW - timedelta(seconds=301), priority=0, kind="staff_alert")
    due_message(session, clinic[0], NOW, status="claimed", claimed_at=NOW, claimed_by="host-a:1")
    with freeze_time(NOW):
        heartbeat.beat(engine, "host-a:1")
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["dispatch"] == (
        "an urgent message (a reply or a staff alert) has waited 301 s (limit 300 s): "
        "dispatch is stalled")


def test_the_due_age_limit_is_a_setting(request, settings):
    settings["READY_MAX_DUE_AGE_SECONDS"] = 30
    app = request.getfixturevalue("app")
    clinic, _ = request.getfixturevalue("clinic")
    due_message(request.getfixturevalue("session"), clinic, NOW - timedelta(seconds=31))
    with freeze_time(NOW):
        heartbeat.beat(app.extensions["aftercare.engine"], "host-a:1")
        response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.get_json()["failed"] == ["dispatch"]


def test_no_heartbeat_at_all_is_unready(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["failed"] == ["worker"]
    assert "is `aftercare worker` running?" in response.get_json()["checks"]["worker"]


def test_an_unreachable_database_is_named_without_its_address(settings):
    from service import create_app

    app = create_app({**settings, "DATABASE_URL": "postgresql+psycopg://u:pw@127.0.0.1:1/aftercare"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failed"] == ["database"]
    assert body["checks"] == {"database": "unreachable (OperationalError)",
                              "migrations": "not checked", "worker": "not checked",
                              "dispatch": "not checked"}
    assert body["oldest_due_seconds"] is None
    assert "127.0.0.1" not in response.get_data(as_text=True)


def test_migrations_behind_the_code_are_unready(app, client, database_url):
    config = db.alembic_config(database_url)
    head = ScriptDirectory.from_config(config).get_revision("head")
    command.downgrade(config, "-1")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["failed"] == ["migrations"]
    assert f"the database is at {head.down_revision}, this code needs {head.revision}" in \
        response.get_json()["checks"]["migrations"]


def test_the_worker_runs_a_heartbeat_job_often_enough(app, session):
    scheduler = build_scheduler(app)
    job = scheduler.get_job("heartbeat")
    assert job.trigger.interval == timedelta(seconds=15)  # 4 beats per 60 s staleness limit
    with freeze_time(NOW):
        job.func(*job.args)
    [row] = session.exec(sa.select(WorkerHeartbeat)).scalars().all()
    assert row.worker_id.endswith(f":{os.getpid()}")
    assert row.last_seen_at == NOW


def test_a_dead_workers_row_goes_after_a_day(app, session):
    engine = app.extensions["aftercare.engine"]
    with freeze_time(NOW):
        heartbeat.beat(engine, "dead:1")
    with freeze_time(NOW + timedelta(days=1, seconds=1)):
        heartbeat.beat(engine, "alive:2")
    assert [r.worker_id for r in session.exec(sa.select(WorkerHeartbeat)).scalars()] == ["alive:2"]
