"""The administrator's `aftercare` commands, each on a temporary database: clinics, logins, the
CSV import, a client's export and erasure, retention, and the checks of the installation."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import select

from jobs.worker import build_scheduler
from service.accounts.passwords import verify_password
from service.config import Config
from service.models import (
    AuditEvent,
    CheckIn,
    Client,
    Clinic,
    InboundMessage,
    Message,
    StaffUser,
    Visit,
)
from service.ops import doctor
from tests.conftest import BOTH_BACKENDS, FROM_NUMBER
from tests.helpers import NOW, PHONE, at, drain, enrol, text


def rows(session, model, *where):
    session.expire_all()
    return session.exec(select(model).where(*where).order_by(*model.__table__.primary_key)).all()


# --- clinics and logins ------------------------------------------------------------------------

def test_create_clinic_normalises_what_it_is_given(runner, session):
    result = runner.invoke(args=["create-clinic", "Spine & Sole", "--phone", "(202) 555-0100",
                                 "--time-zone", "America/Chicago", "--on-call-phone", "202-555-0101",
                                 "--on-call-email", "Lead@Example.com"])
    assert result.exit_code == 0, result.output
    [clinic] = rows(session, Clinic)
    assert result.output.startswith(f"created clinic {clinic.id}: Spine & Sole")
    assert (clinic.phone, clinic.time_zone) == ("+12025550100", "America/Chicago")
    assert (clinic.on_call_phones, clinic.on_call_emails) == (["+12025550101"], ["lead@example.com"])


@pytest.mark.parametrize("option, value, reason", [
    ("--phone", "12", "not a valid phone number"),
    ("--time-zone", "Mars/Olympus", "not a known IANA time zone"),
    ("--on-call-email", "nobody", "not a valid email address"),
])
def test_create_clinic_refuses_bad_values(runner, session, option, value, reason):
    args = ["create-clinic", "X", "--phone", "+12025550100", option, value]
    result = runner.invoke(args=args)
    assert result.exit_code == 2 and reason in result.output
    assert rows(session, Clinic) == []


def test_create_user_hashes_the_password_and_refuses_a_second_login(runner, session, clinic):
    args = ["create-user", str(clinic[0].id), "Kim@Clinic.example", "--name", "Kim", "--role", "owner"]
    result = runner.invoke(args=args, input="correct horse battery\ncorrect horse battery\n")
    assert result.exit_code == 0, result.output
    [user] = rows(session, StaffUser)
    assert (user.email, user.role) == ("kim@clinic.example", "owner")
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, "correct horse battery")

    again = runner.invoke(args=[*args, "--password", "another long password"])
    assert again.exit_code == 1 and "kim@clinic.example has a login already" in again.output
    short = runner.invoke(args=["create-user", str(clinic[0].id), "b@c.example", "--name", "B",
                                "--password", "short"])
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    nowhere = runner.invoke(args=["create-user", "99", "c@c.example", "--name", "C",
                                  "--password", "long enough password"])
    assert nowhere.exit_code == 1 and "no clinic with id 99" in nowhere.output
    assert len(rows(session, StaffUser)) == 1


# --- the CSV import ----------------------------------------------------------------------------

CSV = """name,phone,email,language,time_zone,sms_consent
Ana Ruiz,(202) 555-0123,ana@example.com,es,America/Chicago,yes
Bo Chen,12,,en,,no
,+12025550124,,,,
Cy Doe,,not-an-email,,Mars/Base,
Di Fox,2025550123,,,,
,,,,,
Ed Gray,,ed@example.com,,,
"""


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "clients.csv"
    path.write_text(CSV, encoding="utf-8")
    return str(path)


def test_import_reports_every_bad_row_and_imports_nothing(runner, session, clinic, csv_file):
    result = runner.invoke(args=["import-clients", str(clinic[0].id), csv_file])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "line 3: phone: not a valid phone number",
        "line 4: name: Field required",
        "line 5: email: value is not a valid email address: An email address must have an @-sign.",
        "line 5: time_zone: not a known IANA time zone, e.g. America/New_York",
        "line 6: phone: same number as line 2",
        "Error: 5 problem(s) found: nothing imported (fix them, or import the rest with --skip-bad)",
    ]
    assert rows(session, Client) == []


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_import_with_skip_bad_keeps_the_good_rows_and_is_idempotent(runner, session, clinic,
                                                                    csv_file):
    result = runner.invoke(args=["import-clients", str(clinic[0].id), csv_file, "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "imported 2 client(s), skipped 4 bad row(s)"
    ana, ed = sorted(rows(session, Client), key=lambda c: c.name)
    assert (ana.phone, ana.email, ana.language, ana.time_zone) == (
        PHONE, "ana@example.com", "es", "America/Chicago")
    assert ana.sms_consent_at is not None
    assert (ed.phone, ed.email, ed.time_zone, ed.sms_consent_at) == (
        None, "ed@example.com", "America/New_York", None)  # the clinic's zone

    again = runner.invoke(args=["import-clients", str(clinic[0].id), csv_file, "--skip-bad"])
    assert again.exit_code == 0 and len(rows(session, Client)) == 2


def test_import_refuses_unknown_columns(runner, session, clinic, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("name,mobile\nAna,+12025550123\n")
    result = runner.invoke(args=["import-clients", str(clinic[0].id), str(path), "--skip-bad"])
    assert result.exit_code == 1
    assert "line 1: unknown column 'mobile' (the columns are name, phone, email" in result.stderr
    assert rows(session, Client) == []


# --- one client's data: export, erasure --------------------------------------------------------

@pytest.fixture
def story(client, clinic, providers, dispatcher):
    """A client who got texts, replied "worse" (an escalation, alerts) and has texts pending."""
    visit = enrol(client, clinic[1], external_id="booking-7")
    drain(dispatcher, NOW + timedelta(seconds=10))
    text(client, "worse, it hurts near my spine", NOW + timedelta(hours=25))
    drain(dispatcher, NOW + timedelta(hours=25, seconds=5))
    return visit["client"]["id"]


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_export_holds_everything_about_the_client(runner, story, tmp_path):
    path = tmp_path / "export.json"
    result = runner.invoke(args=["export-client", str(story), "--output", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(path.read_text())
    assert data["clinic"] == "Back Walk Clinic"
    assert (data["client"]["name"], data["client"]["phone"]) == ("Ana Ruiz", PHONE)
    assert [v["external_id"] for v in data["visits"]] == ["booking-7"]
    assert [i["body"] for i in data["inbound_messages"]] == ["worse, it hurts near my spine"]
    assert [c["answer"] for c in data["check_ins"]] == ["worse"]
    assert [e["severity"] for e in data["escalations"]] == ["concern"]
    sent = [m for m in data["messages"] if m["status"] == "sent"]
    assert {m["kind"] for m in sent} >= {"window_start", "concern_advice"}
    assert all(m["body"] and m["recipient"] == PHONE for m in sent)
    assert "staff_alert" not in {m["kind"] for m in data["messages"]}
    assert {e["action"] for e in data["audit_events"]} >= {"visit_enrolled", "escalation_opened"}


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_erase_removes_what_identifies_the_client_and_cancels_pending_texts(runner, session, story):
    pending = len(rows(session, Message, Message.client_id == story, Message.status == "pending"))
    assert pending > 0
    result = runner.invoke(args=["erase-client", str(story), "--yes"])
    assert result.exit_code == 0, result.output

    client = session.get(Client, story)
    session.refresh(client)
    assert (client.name, client.phone, client.email) == ("[erased]", None, None)
    messages = rows(session, Message, Message.client_id == story)
    assert {m.status for m in messages} <= {"sent", "cancelled", "skipped"}
    assert len([m for m in messages if m.error_code == "erased"]) == pending
    assert all(m.recipient == "[erased]" and m.body is None and m.params == {} for m in messages)
    [inbound] = rows(session, InboundMessage)
    assert (inbound.body, inbound.from_number) == ("", "[erased]")
    assert [v.external_id for v in rows(session, Visit)] == [None]
    assert [c.answer for c in rows(session, CheckIn)] == ["worse"]  # anonymous now: kept
    events = rows(session, AuditEvent, AuditEvent.client_id == story)
    *theirs, erased = events  # their rows stay in the audit chain, without their detail
    assert all(e.detail == {"erased": True} for e in theirs) and erased.action == "client_erased"
    assert erased.detail == {"redacted": [e.id for e in theirs]}

    twice = runner.invoke(args=["erase-client", str(story), "--yes"])
    assert twice.exit_code == 1 and "was erased already" in twice.output


def test_erase_asks_first_and_waits_for_a_message_in_flight(runner, session, story):
    declined = runner.invoke(args=["erase-client", str(story)], input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert session.get(Client, story).name == "Ana Ruiz"

    message = rows(session, Message, Message.client_id == story, Message.status == "pending")[0]
    message.status = "claimed"
    session.add(message)
    session.commit()
    busy = runner.invoke(args=["erase-client", str(story), "--yes"])
    assert busy.exit_code == 1 and "being sent right now: try again in a minute" in busy.output
    session.expire_all()
    assert session.get(Client, story).phone == PHONE


# --- retention ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_purge_deletes_old_finished_rows_and_keeps_the_record_of_care(runner, session, story):
    old_enough = NOW + timedelta(days=100)  # the story happened 100 days before
    with at(old_enough):
        result = runner.invoke(args=["purge", "--older-than", "90"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("older than 90 days: ")
    assert rows(session, InboundMessage) == []
    assert [c.inbound_message_id for c in rows(session, CheckIn)] == [None]
    # The audit trail has its own retention (AUDIT_RETENTION_DAYS, tests/test_access_log.py).
    assert rows(session, AuditEvent, AuditEvent.created_at < old_enough - timedelta(days=90))
    left = rows(session, Message)
    assert left and {m.status for m in left} == {"pending"}  # never purged while still to send
    assert len(rows(session, Client)) == 1 and len(rows(session, Visit)) == 1


def test_purge_keeps_what_is_younger_than_the_cutoff(runner, session, story):
    messages = len(rows(session, Message))
    with at(NOW + timedelta(days=30)):
        result = runner.invoke(args=["purge", "--older-than", "90"])
    assert result.output == ("older than 90 days: 0 messages, 0 inbound_messages, "
                             "0 staff_sessions, 0 login_attempts, 0 staff_links\n")
    assert len(rows(session, Message)) == messages


def test_purge_needs_a_period(runner, app):
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 2 and "RETENTION_DAYS is not set" in result.output
    assert build_scheduler(app).get_job("purge") is None


def test_the_worker_purges_daily_when_retention_is_set(settings):
    from service import create_app

    app = create_app({**settings, "RETENTION_DAYS": 400})
    job = build_scheduler(app).get_job("purge")
    assert job.trigger.interval == timedelta(days=1) and job.args[1] == 400


# --- checking the installation -----------------------------------------------------------------

def test_send_test_sms_goes_through_twilio(runner, providers):
    twilio, _ = providers
    result = runner.invoke(args=["send-test-sms", "(202) 555-0123"])
    assert result.exit_code == 0, result.output
    [sms] = twilio.messages
    assert (sms.to, sms.from_, sms.body) == (PHONE, FROM_NUMBER, doctor.TEST_BODY)
    assert f"Twilio accepted it as {sms.sid}" in result.output


def test_send_test_sms_explains_twilio_errors(runner, providers):
    twilio, _ = providers
    twilio.fail_next(1, 400, code=21608)
    result = runner.invoke(args=["send-test-sms", PHONE])
    assert result.exit_code == 1
    assert "(code 21608): a trial account" in result.output
    assert "a trial account can only text numbers verified in the Twilio console" in result.output


def test_send_test_sms_without_twilio_says_what_to_set(runner):
    result = runner.invoke(args=["send-test-sms", PHONE])
    assert result.exit_code == 1 and "Twilio is not configured: set TWILIO_ACCOUNT_SID" in result.output


def test_doctor_covers_every_setting():
    assert set(Config().as_dict()) - doctor.COVERED == set()


def test_doctor_names_each_problem_and_prints_no_secret(settings):
    from service import create_app

    settings.update(
        SECRET_KEY="dev-only-change-me", SEND_CONCURRENCY=0, SMTP_TLS="tls", LOG_LEVEL="LOUD",
        TWILIO_ACCOUNT_SID="AC123", TWILIO_API_KEY_SID="SK" + "0" * 32,
        TWILIO_API_KEY_SECRET="secret-that-must-not-print", TWILIO_FROM_NUMBER="+1555",
        SMTP_HOST="127.0.0.1", SMTP_PORT=1, PUBLIC_BASE_URL="http://aftercare.example.com",
    )
    # As the `aftercare` command builds it: a serving app would refuse this SECRET_KEY at once.
    result = create_app(settings, serving=False).test_cli_runner().invoke(args=["doctor"])
    assert result.exit_code == 1
    failures = [line.split(":")[0].split()[1] for line in result.output.splitlines()
                if line.startswith("FAIL")]
    assert failures == ["SEND_CONCURRENCY", "SMTP_TLS", "LOG_LEVEL", "SECRET_KEY",
                        "TWILIO_ACCOUNT_SID", "TWILIO_API_KEY_SECRET", "TWILIO_AUTH_TOKEN",
                        "TWILIO_FROM_NUMBER", "smtp", "PUBLIC_BASE_URL"]
    assert "secret-that-must-not-print" not in result.output
    assert "Error: 10 problem(s) to fix" in result.output


class _Healthz(BaseHTTPRequestHandler):
    def do_GET(self):  # http.server's name for it
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def public_site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_doctor_passes_a_good_installation(settings, providers, public_site):
    from service import create_app

    settings.update(SECRET_KEY="k" * 64, TWILIO_AUTH_TOKEN="0123456789abcdef" * 2,
                    PUBLIC_BASE_URL=public_site, METRICS_TOKEN="m" * 32)
    result = create_app(settings).test_cli_runner().invoke(args=["doctor"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for ok in ("settings", "database", "migrations", "twilio", "smtp", "public URL"):
        assert any(line.startswith(f"ok    {ok}:") for line in lines), (ok, result.output)
    assert "FAIL" not in result.output
    assert "warn  worker: no worker has ever sent a heartbeat" in result.output
