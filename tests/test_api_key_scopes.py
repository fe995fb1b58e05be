"""API keys hold scopes (a booking system's key cannot read audit logs or acknowledge escalations),
may expire, note their last use, and their creation and revocation are audited."""

import hashlib
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlmodel import Session, select

from service import db
from service.accounts import apikeys
from service.models import ApiKey, AuditEvent, Clinic
from service.web.api import SCOPE_OF
from tests.conftest import BOTH_BACKENDS, auth, make_clinic
from tests.helpers import NOW, at, enrol
from tests.web_helpers import csrf_token, log_in, make_staff


def api_endpoints(app) -> list:
    """Every endpoint under /api/v1 that takes a key (all but the OpenAPI document): a new
    endpoint is in this list, and so in the matrix, as soon as it is routed."""
    return [rule for rule in app.url_map.iter_rules()
            if rule.rule.startswith("/api/v1/") and rule.endpoint != "api.openapi"]


def call(client, rule, key):
    method = (rule.methods - {"HEAD", "OPTIONS"}).pop()
    path = re.sub(r"<int:\w+>", "1", rule.rule)
    return client.open(path, method=method, json={} if method == "POST" else None,
                       headers=auth(key))


def test_the_table_names_one_known_scope_for_every_endpoint(app):
    views = {rule.endpoint.removeprefix("api.") for rule in api_endpoints(app)}
    assert views == set(SCOPE_OF)
    assert set(SCOPE_OF.values()) == set(apikeys.SCOPES)


@pytest.mark.parametrize("scope", list(apikeys.SCOPES))
def test_a_key_with_one_scope_is_refused_exactly_where_another_is_needed(app, client, clinic,
                                                                         session, scope):
    key = apikeys.issue(session, clinic[0], "one scope", scopes=[scope])
    for rule in api_endpoints(app):
        needed = SCOPE_OF[rule.endpoint.removeprefix("api.")]
        response = call(client, rule, key)
        if needed == scope:
            assert response.status_code != 403, rule.rule
        else:
            assert response.status_code == 403, rule.rule
            assert response.get_json() == {
                "error": "forbidden", "message": f"this key lacks the '{needed}' scope"}


def test_a_booking_system_s_key_neither_reads_the_audit_log_nor_acknowledges(client, clinic,
                                                                             session):
    """The review's finding: the key that enrols could read audit logs and acknowledge."""
    key = apikeys.issue(session, clinic[0], "booking", scopes=["enrol", "read"])
    client_id = enrol(client, key)["client_id"]
    assert client.get(f"/api/v1/clients/{client_id}", headers=auth(key)).status_code == 200
    assert client.get(f"/api/v1/clients/{client_id}/audit", headers=auth(key)).status_code == 403
    assert client.post("/api/v1/escalations/1/acknowledge", headers=auth(key)).status_code == 403


def test_an_expired_key_is_401_like_a_revoked_one(runner, client, clinic):
    with at(NOW):
        result = runner.invoke(args=["create-api-key", str(clinic[0].id), "--expires-in-days", "1"])
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    with at(NOW + timedelta(hours=23)):
        assert client.get("/api/v1/visits/1", headers=auth(key)).status_code == 404  # authorised
    with at(NOW + timedelta(days=1, seconds=1)):
        response = client.get("/api/v1/visits/1", headers=auth(key))
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"


def test_a_request_notes_the_key_s_last_use(client, clinic, session):
    row = session.exec(select(ApiKey)).one()
    assert row.last_used_at is None
    with at(NOW):
        client.get("/api/v1/visits/1", headers=auth(clinic[1]))
    session.refresh(row)
    assert row.last_used_at == NOW


def audit_rows(session, action, actor_prefix=("cli", "staff:")):
    """The audit rows of `action` by the CLI or staff (the fixtures' own keys are the system's)."""
    session.expire_all()
    rows = session.exec(select(AuditEvent).where(AuditEvent.action == action)).all()
    return [row for row in rows if row.actor.startswith(actor_prefix)]


def test_the_cli_makes_a_key_with_the_scopes_asked_and_audits_it(runner, client, clinic, session):
    help_text = runner.invoke(args=["create-api-key", "--help"]).output
    assert "Default: every scope" in help_text
    result = runner.invoke(args=["create-api-key", str(clinic[0].id), "--name", "booking",
                                 "--scope", "enrol", "--scope", "read"])
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    row = session.exec(select(ApiKey).where(ApiKey.prefix == key[:12])).one()
    assert row.scopes == "enrol read" and row.expires_at is None
    [created] = audit_rows(session, "api_key_created")
    assert created.actor == "cli" and created.clinic_id == clinic[0].id
    assert created.detail == {"name": "booking", "prefix": key[:12], "scopes": ["enrol", "read"],
                              "expires_at": None}
    assert key not in str(created.detail)
    everything = runner.invoke(args=["create-api-key", str(clinic[0].id)]).output.strip()
    assert session.exec(select(ApiKey.scopes).where(ApiKey.prefix == everything[:12])).one() == \
        "enrol read acknowledge audit"


def test_the_settings_make_list_and_revoke_a_key_and_audit_both(client, clinic, session):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    with at(NOW):
        assert log_in(client, owner.email).status_code == 302
        page = client.get("/settings")
        assert all(f'name="scope" value="{scope}" checked' in page.get_data(as_text=True)
                   for scope in apikeys.SCOPES)
        refused = client.post("/settings/api-keys", data={"csrf_token": csrf_token(page),
                                                          "name": "none"})
        assert refused.status_code == 302 and audit_rows(session, "api_key_created") == []
        made = client.post("/settings/api-keys", data={
            "csrf_token": csrf_token(page), "name": "booking", "scope": ["enrol"],
            "expires_in_days": "90"})
    key = made.get_data(as_text=True).split('data-testid="new-key">')[1].split("<")[0]
    row = session.exec(select(ApiKey).where(ApiKey.prefix == key[:12])).one()
    assert row.scopes == "enrol" and row.expires_at == NOW + timedelta(days=90)
    [created] = audit_rows(session, "api_key_created")
    assert created.actor == f"staff:{owner.id}" and created.detail["scopes"] == ["enrol"]
    assert key not in str(created.detail)

    with at(NOW + timedelta(hours=1)):
        client.post("/api/v1/visits", json={}, headers=auth(key))
        log_in(client, owner.email)  # the session of an hour ago has ended (idle timeout)
        listed = client.get("/settings")
        item = listed.get_data(as_text=True).split(f'data-testid="key-{key[:12]}">')[1]
        item = item.split("</li>")[0]
        assert "enrol" in item and "read" not in item
        assert "expires Tue 8 Sep, 10:00" in item and "last used Wed 10 Jun, 11:00" in item
        client.post(f"/settings/api-keys/{row.id}/revoke",
                    data={"csrf_token": csrf_token(listed)})
    [revoked] = audit_rows(session, "api_key_revoked")
    assert revoked.actor == f"staff:{owner.id}"
    assert revoked.detail == {"name": "booking", "prefix": key[:12], "scopes": ["enrol"]}
    assert client.post("/api/v1/visits", json={}, headers=auth(key)).status_code == 401


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_key_made_before_the_migration_still_enrols(database_url, client):
    config = db.alembic_config(database_url)
    engine = sa.create_engine(database_url)
    before = ScriptDirectory.from_config(config).get_revision("0012_api_key_scopes").down_revision
    raw = "ak_" + "old" * 12
    try:
        with Session(engine, expire_on_commit=False) as session:
            clinic, _ = make_clinic(session, "Old Clinic")
        command.downgrade(config, before)
        with engine.begin() as conn:  # the table as it was: no scopes, no expiry
            conn.execute(sa.text(
                "INSERT INTO api_key (clinic_id, name, prefix, key_hash, created_at, window_count)"
                " VALUES (:clinic, 'old', :prefix, :digest, :now, 0)"),
                {"clinic": clinic.id, "prefix": raw[:12], "now": NOW.replace(tzinfo=None),
                 "digest": hashlib.sha256(raw.encode()).hexdigest()})
        command.upgrade(config, "head")
        with Session(engine) as session:
            assert session.exec(select(Clinic)).one().id == clinic.id
            row = session.exec(select(ApiKey).where(ApiKey.prefix == raw[:12])).one()
            assert row.scopes == "enrol read acknowledge audit" and row.expires_at is None
        enrol(client, raw)
    finally:
        command.upgrade(config, "head")
        engine.dispose()
