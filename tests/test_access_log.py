"""The access log holds (issue 15 item 7): who viewed, searched, exported, logged in or failed to,
read through the API, from where; each row chained to the one before it, so that `aftercare audit
verify` names an edited, inserted or deleted row; erasure and retention keep the chain whole."""

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from service.care import audit, privacy
from service.models import AuditEvent, Client, utcnow
from tests.conftest import BOTH_BACKENDS, auth, make_clinic
from tests.helpers import NOW, at, enrol
from tests.web_helpers import csrf_token, log_in, make_staff

ADDRESS = "198.51.100.7"


def trail(session, *where) -> list[AuditEvent]:
    session.expire_all()
    return session.exec(select(AuditEvent).where(*where).order_by(AuditEvent.id)).all()


def write(session, clinic_id, count, **detail) -> list[int]:
    for n in range(count):
        audit.record(session, "note", clinic_id=clinic_id, n=n, **detail)
        session.commit()
    return [row.id for row in trail(session, audit.in_chain(clinic_id))][-count:]


def verify(runner, *args):
    return runner.invoke(args=["audit", "verify", *args])


def tamper(session, statement: str, **params) -> None:
    session.execute(sa.text(statement), params)
    session.commit()


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_verify_passes_on_a_fresh_trail_and_names_an_edited_row(runner, session, clinic):
    ids = write(session, clinic[0].id, 4, said="fine")
    result = verify(runner)
    assert result.exit_code == 0, result.output
    assert f"ok: 5 rows (clinic {clinic[0].id}" in result.output  # with the key's creation
    tamper(session, "UPDATE audit_event SET detail = :d WHERE id = :id",
           d='{"n": 1, "said": "worse"}', id=ids[1])
    result = verify(runner, "--clinic", str(clinic[0].id))
    assert result.exit_code == 1
    assert f"broken at row {ids[1]} (note)" in result.output


def test_a_deleted_or_inserted_row_breaks_the_chain(runner, session, clinic):
    other, _ = make_clinic(session, name="Other")
    a1, = write(session, clinic[0].id, 1)
    b, = write(session, other.id, 1)
    a3, a4 = write(session, clinic[0].id, 2)
    tamper(session, "DELETE FROM audit_event WHERE id = :id", id=a3)
    assert f"broken at row {a4}" in verify(runner, "--clinic", str(clinic[0].id)).output
    # Into the gap another clinic's row left: a row in this chain, with a plausible hash.
    tamper(session, "UPDATE audit_event SET clinic_id = :c, hash = "
                    "(SELECT hash FROM audit_event WHERE id = :a1) WHERE id = :b",
           c=clinic[0].id, a1=a1, b=b)
    result = verify(runner, "--clinic", str(clinic[0].id))
    assert result.exit_code == 1 and f"broken at row {b}" in result.output


def test_a_row_written_outside_the_application_is_named(runner, session, clinic):
    write(session, clinic[0].id, 2)
    tamper(session, "INSERT INTO audit_event (clinic_id, actor, action, detail, created_at) "
                    "VALUES (:c, 'system', 'note', '{}', :t)", c=clinic[0].id, t=utcnow())
    result = verify(runner)
    assert result.exit_code == 1 and "no hash (inserted outside the application)" in result.output


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_erasure_drops_the_personal_data_and_keeps_the_chain(runner, session, client, clinic):
    ana = enrol(client, clinic[1])["client"]["id"]
    audit.record(session, "inbound_interpreted", clinic_id=clinic[0].id, client_id=ana,
                 body="my back hurts, Ana")
    session.commit()
    theirs = [row.id for row in trail(session, AuditEvent.client_id == ana)]
    privacy.erase_client(session, session.get(Client, ana), utcnow(), actor="cli")
    session.commit()
    rows = trail(session, AuditEvent.client_id == ana)
    assert [row.detail for row in rows[:-1]] == [audit.ERASED] * len(theirs)
    assert (rows[-1].action, rows[-1].detail) == ("client_erased", {"redacted": theirs})
    result = verify(runner)
    assert result.exit_code == 0, result.output
    # What erasure did not list is still checked.
    tamper(session, "UPDATE audit_event SET detail = :d WHERE id = :id",
           d='{"erased": true}', id=rows[-1].id)
    assert verify(runner).exit_code == 1


def staff_browser(app, session, clinic):
    owner = make_staff(session, clinic, "owner@clinic.example", role="owner")
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = ADDRESS
    return browser, f"staff:{owner.id}"


def test_staff_access_leaves_a_row_with_who_and_where(app, session, client, clinic):
    ana = enrol(client, clinic[1])["client"]["id"]
    browser, staff = staff_browser(app, session, clinic[0])
    assert log_in(browser, "owner@clinic.example", "wrong password!").status_code == 401
    assert log_in(browser, "owner@clinic.example").status_code == 302
    assert browser.get(f"/clients/{ana}").status_code == 200
    token = csrf_token(browser.get("/visits/new"))
    assert browser.post("/clients/search", json={"q": "Ana"},
                        headers={"X-CSRFToken": token}).get_json()[0]["id"] == ana
    assert browser.get(f"/clients/{ana}/export.json").status_code == 200
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    rows = trail(session, AuditEvent.remote_addr == ADDRESS)
    assert [(r.action, r.actor, r.client_id) for r in rows] == [
        ("login_failed", "anonymous", None), ("staff_login", staff, None),
        ("client_viewed", staff, ana), ("clients_searched", staff, None),
        ("client_exported", staff, ana), ("staff_logout", staff, None)]
    assert rows[0].detail == {"email": "owner@clinic.example"}
    assert rows[3].detail == {"found": [ana]}
    assert verify(app.test_cli_runner()).exit_code == 0


def test_an_api_read_names_the_key_and_the_address(client, session, clinic):
    ana = enrol(client, clinic[1])["client"]["id"]
    for path in ("", "/checkins", "/escalations", "/audit"):
        response = client.get(f"/api/v1/clients/{ana}{path}", headers=auth(clinic[1]),
                              environ_base={"REMOTE_ADDR": ADDRESS})
        assert response.status_code == 200
    rows = trail(session, AuditEvent.action == "api_read")
    assert {(r.actor, r.client_id, r.remote_addr) for r in rows} == {
        (f"api:{clinic[1][:12]}", ana, ADDRESS)}
    assert [r.detail["path"] for r in rows] == [
        f"/api/v1/clients/{ana}{path}" for path in ("", "/checkins", "/escalations", "/audit")]


def test_retention_days_leave_the_audit_trail_to_its_own_period(runner, session):
    with at(NOW):  # rows of no clinic (a failed login's): a chain of their own
        old = write(session, None, 3)
    with at(NOW + timedelta(days=40)):
        young = write(session, None, 2)
    with at(NOW + timedelta(days=100)):
        assert runner.invoke(args=["purge", "--older-than", "30"]).exit_code == 0
        assert [r.id for r in trail(session, AuditEvent.id.in_(old + young))] == old + young
        result = runner.invoke(args=["audit", "purge", "--older-than", "90"])
    assert result.exit_code == 0, result.output
    rows = trail(session)
    assert [r.id for r in rows[:2]] == young
    assert rows[-1].action == "audit_purged" and rows[-1].detail["through_id"] == old[-1]
    result = verify(runner)
    assert result.exit_code == 0 and "ok: 3 rows" in result.output
    tamper(session, "UPDATE audit_event SET actor = 'cli' WHERE id = :id", id=young[0])
    assert f"broken at row {young[0]}" in verify(runner).output


def test_audit_purge_needs_a_period(runner):
    result = runner.invoke(args=["audit", "purge"])
    assert result.exit_code == 2 and "AUDIT_RETENTION_DAYS is not set" in result.output


def test_a_rolled_back_transaction_appends_nothing(session, clinic):
    audit.record(session, "note", clinic_id=clinic[0].id)
    session.rollback()
    write(session, clinic[0].id, 1)
    assert [r.action for r in trail(session)] == ["api_key_created", "note"]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
def test_concurrent_writers_keep_one_chain(app, runner, clinic):
    engine, start = app.extensions["aftercare.engine"], threading.Barrier(8)

    def writer(n):
        with Session(engine) as session:
            start.wait()
            for i in range(10):
                audit.record(session, "note", clinic_id=clinic[0].id, writer=n, i=i)
                session.commit()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = verify(runner)
    assert result.exit_code == 0 and "ok: 81 rows" in result.output, result.output


def test_the_worker_purges_the_audit_trail_daily_when_its_retention_is_set(settings):
    from jobs.worker import build_scheduler
    from service import create_app

    assert build_scheduler(create_app(settings)).get_job("purge_audit") is None
    job = build_scheduler(create_app({**settings, "AUDIT_RETENTION_DAYS": 2000})).get_job("purge_audit")
    assert job.trigger.interval == timedelta(days=1) and job.args[1] == 2000
