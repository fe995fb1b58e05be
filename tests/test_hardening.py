"""Hardening from the security review: the web app and the worker refuse a SECRET_KEY anyone could
know (doctor says the same), SQL parameters stay out of errors and logs, hostile ids, JSON and
dates are a 4xx, personal data is never cached, files are private, and the example env file's
placeholder is one the service refuses."""

import asyncio
import logging
import os
import re
import stat

import flask.cli
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator

import jobs.worker
from service import cli, create_app, db
from service.config import DEV_SECRET_KEY, ROOT, UnsafeSettings
from service.messaging.links import client_page_url
from service.models import Client, Visit
from tests.conftest import AUTH_TOKEN, BOTH_BACKENDS, PUBLIC_URL, auth
from tests.web_helpers import csrf_token, log_in, make_staff


def example_secret_key() -> str:
    """SECRET_KEY as deploy/aftercare.env.example has it: whoever copies the file gets it."""
    text = (ROOT / "deploy" / "aftercare.env.example").read_text()
    return re.search(r"^SECRET_KEY=(.*)$", text, re.MULTILINE).group(1)


BAD_KEYS = {
    "unset": (None, "is unset or the development value"),
    "development value": (DEV_SECRET_KEY, "is unset or the development value"),
    "example placeholder": (example_secret_key(), "is the placeholder of deploy/aftercare.env.example"),
    "short": ("x" * 31, "is shorter than 32 bytes"),
}
GOOD_KEY = "k" * 32


# --- SECRET_KEY: the web app and the worker refuse to start ----------------------------------

@pytest.fixture
def started(monkeypatch):
    """What `aftercare run` and `aftercare worker` would have started (nothing is served)."""
    started = []
    monkeypatch.delenv("FLASK_RUN_FROM_CLI", raising=False)  # Flask's CLI sets it: gone after
    monkeypatch.setattr(flask.cli, "run_simple", lambda *args, **kwargs: started.append("run"))
    monkeypatch.setattr(jobs.worker, "run", lambda app: started.append("worker"))
    return started


def aftercare(command: str, **env):
    """`aftercare <command>` as the installed script builds it, with these settings alone."""
    clean = {name: None for name in ("SECRET_KEY", "DATABASE_URL", "PUBLIC_BASE_URL",
                                     "AFTERCARE_ENV", "FLASK_DEBUG")}
    return CliRunner().invoke(cli.command_group(), [command], env={**clean, **env})


@pytest.mark.parametrize("command", ["run", "worker"])
@pytest.mark.parametrize("bad", BAD_KEYS)
def test_web_and_worker_refuse_each_unsafe_secret_key(started, database_url, command, bad):
    key, reason = BAD_KEYS[bad]
    result = aftercare(command, DATABASE_URL=database_url, SECRET_KEY=key)
    assert result.exit_code == 1 and started == []
    assert f"Error: SECRET_KEY {reason}: anyone could forge client links" in result.output
    assert "AFTERCARE_ENV=development" in result.output  # the way out on a developer's machine


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_gunicorns_app_refuses_each_unsafe_secret_key(monkeypatch, database_url, bad):
    """deploy/: gunicorn 'service:create_app()' (its workers then fail to boot, and it exits)."""
    monkeypatch.delenv("AFTERCARE_ENV", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    key, reason = BAD_KEYS[bad]
    if key is not None:
        monkeypatch.setenv("SECRET_KEY", key)
    with pytest.raises(UnsafeSettings, match=f"SECRET_KEY {reason}"):
        create_app()


@pytest.mark.parametrize("command", ["run", "worker"])
def test_a_good_key_or_development_starts(started, database_url, command):
    assert aftercare(command, DATABASE_URL=database_url, SECRET_KEY=GOOD_KEY).exit_code == 0
    # AFTERCARE_ENV=development takes any key; so does a fresh clone's `make run`, which sets
    # nothing at all (the local SQLite database, the development key).
    assert aftercare(command, DATABASE_URL=database_url, SECRET_KEY="short",
                     AFTERCARE_ENV="development").exit_code == 0
    assert aftercare(command).exit_code == 0
    assert started == [command] * 3


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_doctor_fails_where_the_start_refuses(settings, bad):
    key, reason = BAD_KEYS[bad]
    settings.update(SECRET_KEY=key or DEV_SECRET_KEY)  # unset: the development value
    runner = create_app(settings, serving=False).test_cli_runner()
    assert f"FAIL  SECRET_KEY: {reason}: the web app and the worker refuse to start" in \
        runner.invoke(args=["doctor"]).output
    settings.update(AFTERCARE_ENV="development")
    output = create_app(settings, serving=False).test_cli_runner().invoke(args=["doctor"]).output
    assert f"warn  SECRET_KEY: {reason}: accepted only because AFTERCARE_ENV is development" \
        in output


# --- SQL parameters stay out of errors and logs --------------------------------------------------

PERSONAL = "Dana Secretname"
FAILING = sa.text("INSERT INTO client (clinic_id, name, phone) VALUES (:clinic, :name, :phone)")


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_failed_statement_logs_no_parameter_values(app, caplog, database_url):
    app.testing = False  # answered as in production: a 500, the error logged

    @app.get("/boom")
    def boom():
        with db.engine().begin() as conn:  # no clinic 999999: a foreign key error
            conn.execute(FAILING, {"clinic": 999999, "name": PERSONAL, "phone": "+12025550187"})

    with caplog.at_level(logging.ERROR):
        assert app.test_client().get("/boom").status_code == 500
    logged = "\n".join(r.getMessage() + str(r.exc_info and r.exc_info[1]) for r in caplog.records)
    assert "INSERT INTO client" in logged and "SQL parameters hidden" in logged
    assert PERSONAL not in logged and "+12025550187" not in logged

    async def fail_async():  # the dispatcher's engine
        engine = db.make_async_engine(make_url(database_url))
        try:
            async with engine.begin() as conn:
                await conn.execute(FAILING, {"clinic": 999999, "name": PERSONAL, "phone": None})
        finally:
            await engine.dispose()

    with pytest.raises(sa.exc.IntegrityError) as failed:
        asyncio.run(fail_async())
    assert "SQL parameters hidden" in str(failed.value) and PERSONAL not in str(failed.value)


# --- hostile ids, JSON and dates: a 4xx, never a 500 ----------------------------------------------

BIG_IDS = ["9223372036854775808", "99999999999999999999", "2147483648"]


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_ids_too_big_for_the_database_are_404_on_staff_pages(client, clinic, session):
    log_in(client, make_staff(session, clinic[0], "owner@clinic.example").email)
    for big in BIG_IDS:
        for path in (f"/clients/{big}", f"/visits/{big}", f"/clients/{big}/export.json"):
            assert client.get(path).status_code == 404, path
        for path in (f"/escalations/{big}/acknowledge", f"/clients/{big}/erase",
                     f"/clients/{big}/link", f"/settings/api-keys/{big}/revoke"):
            assert client.post(path).status_code == 404, path


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_status_callback_for_a_message_id_too_big_is_404(client, providers):
    form = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    for big in BIG_IDS:
        path = f"/webhooks/twilio/status?m={big}"
        signature = RequestValidator(AUTH_TOKEN).compute_signature(f"{PUBLIC_URL}{path}", form)
        response = client.post(path, data=form, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_json_nested_deeper_than_the_stack_is_400(client, clinic, session):
    nested = "[" * 100_000 + "]" * 100_000
    response = client.post("/api/v1/visits", data=nested, content_type="application/json",
                           headers=auth(clinic[1]))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_json"
    response = client.post("/api/v1/escalations/1/acknowledge", data=nested,
                           content_type="application/json", headers=auth(clinic[1]))
    assert response.status_code in (400, 404)  # no escalation 1: the id is checked first
    log_in(client, make_staff(session, clinic[0], "owner@clinic.example").email)
    token = csrf_token(client.get("/visits/new"))
    search = client.post("/clients/search", data='{"q": ' + nested + "}",
                         content_type="application/json", headers={"X-CSRFToken": token})
    assert search.status_code == 200 and search.get_json() == []  # no query: nothing found


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
@pytest.mark.parametrize("starts_at", ["10000-01-01T00:00:00Z", "9999-12-31T23:30:00-05:00",
                                       "0001-01-01T00:30:00+01:00"])
def test_a_date_outside_years_1_to_9999_in_utc_is_422(client, clinic, session, starts_at):
    body = {"client": {"name": "Ana", "email": "ana@example.com"},
            "next_appointment": {"starts_at": starts_at}}
    response = client.post("/api/v1/visits", json=body, headers=auth(clinic[1]))
    assert response.status_code == 422
    assert "next_appointment.starts_at" in response.get_json()["fields"]
    assert session.exec(sa.select(sa.func.count()).select_from(Visit)).one() == (0,)


@freeze_time("2026-06-10T14:00:00Z")
def test_a_date_past_9999_on_the_enrol_form_is_422(client, clinic, session):
    log_in(client, make_staff(session, clinic[0], "owner@clinic.example").email)
    # 23:30 in New York on the last day of 9999 is in the year 10000 in UTC.
    form = {"name": "Ana", "email": "ana@example.com", "next_appointment": "9999-12-31T23:30",
            "csrf_token": csrf_token(client.get("/visits/new"))}
    response = client.post("/visits/new", data=form)
    assert response.status_code == 422
    assert "years 1 to 9999" in response.get_data(as_text=True)
    assert session.exec(sa.select(sa.func.count()).select_from(Client)).one() == (0,)


# --- no cache keeps personal data -----------------------------------------------------------------

def test_pages_exports_and_api_answers_are_never_cached(client, clinic, session):
    visit = client.post("/api/v1/visits", headers=auth(clinic[1]), json={
        "client": {"name": "Ana", "email": "ana@example.com"}})
    client_id = visit.get_json()["client_id"]
    log_in(client, make_staff(session, clinic[0], "owner@clinic.example").email)
    answers = {"API": visit, "API read": client.get(f"/api/v1/clients/{client_id}",
                                                    headers=auth(clinic[1]))}
    for path in ("/", f"/clients/{client_id}", f"/clients/{client_id}/export.json",
                 f"/visits/{visit.get_json()['id']}", "/no-such-page"):
        answers[path] = client.get(path)
    row = session.get(Client, client_id)
    page = client_page_url(client.application.extensions["aftercare.config"], row.id,
                           row.link_version)
    answers["client page"] = client.get(page.removeprefix(PUBLIC_URL))
    for name, response in answers.items():
        assert response.status_code in (200, 201, 404), name
        assert response.headers["Cache-Control"] == "no-store", name
    # Static files carry nothing personal: they keep their own (revalidated) caching.
    assert client.get("/static/app.css").headers["Cache-Control"] == "no-cache"


# --- files: owner and group only -----------------------------------------------------------------

def test_the_sqlite_database_and_its_directory_are_private(tmp_path):
    old = os.umask(0o000)  # the most permissive umask a process could have
    try:
        db.upgrade(f"sqlite:///{tmp_path / 'var' / 'aftercare.db'}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o750
    assert stat.S_IMODE((tmp_path / "var" / "aftercare.db").stat().st_mode) == 0o640


def test_the_aftercare_command_runs_with_umask_027(monkeypatch):
    """Whatever it creates (the SQLite file, an export, the worker's files): no access for others."""
    monkeypatch.setattr(cli.logs, "configure", lambda level: None)  # pytest's logging stays
    monkeypatch.setattr("sys.argv", ["aftercare", "purge", "--help"])
    old = os.umask(0o000)
    try:
        with pytest.raises(SystemExit):
            cli.main()
        umask = os.umask(0o000)
    finally:
        os.umask(old)
    assert umask == 0o027


def test_the_systemd_units_set_umask_0027():
    for unit in (ROOT / "deploy" / "systemd").iterdir():
        assert "\nUMask=0027\n" in unit.read_text(), unit.name
