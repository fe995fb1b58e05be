"""/healthz and /readyz: readiness names what is wrong (database, migrations, worker heartbeat),
and the worker's heartbeat job keeps it ready."""

import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from freezegun import freeze_time

from jobs.worker import build_scheduler
from service import db, heartbeat
from service.models import WorkerHeartbeat
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
    assert ready.get_json() == {"status": "ready", "checks": {
        "database": "ok", "migrations": "ok", "worker": "ok"}}

    with freeze_time(NOW + timedelta(seconds=61)):
        stale = client.get("/readyz")
    assert stale.status_code == 503
    body = stale.get_json()
    assert body["status"] == "unready" and body["failed"] == ["worker"]
    assert body["checks"]["worker"] == "the latest worker heartbeat is 61 s old (limit 60 s)"


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
                              "migrations": "not checked", "worker": "not checked"}
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
