"""Hostile input at the API, the webhooks and the pages: oversize bodies (413, JSON), bad encodings,
SQL/HTML/script strings stored as given and shown escaped, control characters and header
injection refused, signed webhooks replayed with another body or to another URL refused (403)."""

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from markupsafe import escape
from sqlmodel import func, select
from twilio.request_validator import RequestValidator

from service.config import Config
from service.messaging.dispatch import Dispatcher
from service.models import Client, InboundMessage, Message, Visit
from tests.conftest import AUTH_TOKEN, BOTH_BACKENDS, FROM_NUMBER, PUBLIC_URL, auth
from tests.web_helpers import log_in, make_staff

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS)

NOW = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # 10:00 in New York: outside quiet hours
HOSTILE = [
    "Robert'); DROP TABLE client;--",
    "<script>alert('x')</script>",
    '"><img src=x onerror=alert(1)>',
    "{{ 7*7 }} {% raw %}",
    "Zoë O'Brien-Łukasz 😀",
]


def post_visit(client, key, **client_fields):
    """A visit whose client has these fields, as sent: the test reads the answer."""
    body = {"client": {"name": "Ana Ruiz", "email": "ana@example.com"} | client_fields}
    return client.post("/api/v1/visits", json=body, headers=auth(key))


def count(session, model) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model)).one()


# --- size and encoding ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/visits", "/webhooks/twilio/sms",
                                  "/webhooks/twilio/status"])
def test_an_oversize_body_is_413_in_json(client, clinic, session, path):
    limit = Config().MAX_CONTENT_LENGTH
    for content_type in ("application/json", "application/x-www-form-urlencoded"):
        response = client.post(path, data=b"a=" + b"x" * limit, content_type=content_type,
                               headers=auth(clinic[1]))
        assert response.status_code == 413
        assert response.get_json()["error"] == "request_entity_too_large"
    assert count(session, Visit) == count(session, InboundMessage) == 0


@pytest.mark.parametrize("body", [
    b'{"client": {"name": "\xff\xfe Ana"}}',  # not UTF-8
    b'{"client": {"name": "Ana"}',  # cut short
    "{\"client\": {\"name\": \"Zo\xeb\"}}".encode("latin-1"),  # latin-1 sent as JSON
    b"\xef\xbb\xbf\xef\xbb\xbf{}",  # two byte-order marks
    b"",
])
def test_a_body_that_is_not_utf8_json_is_a_json_400(client, clinic, session, body):
    response = client.post("/api/v1/visits", data=body, content_type="application/json",
                           headers=auth(clinic[1]))
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"
    assert count(session, Visit) == 0


@pytest.mark.parametrize("field, value", [
    ("name", "Ana\x00Ruiz"),  # PostgreSQL text cannot hold NUL: it must not reach it
    ("name", "Ana\r\nBcc: victim@example.com"),
    ("name", "Ana\x1b[31mRuiz"),
    ("email", "ana@example.com\r\nBcc: victim@example.com"),
    ("email", "ana@example.com\nSubject: hi"),
    ("email", "ana@example.com>\r\nX-Injected: 1"),
    ("email", "ana@example.com, victim@example.com"),
    ("email", "ana@exa\x00mple.com"),
    ("time_zone", "America/New_York\x00"),
    ("phone", "+1202555\x000123"),
])
def test_control_characters_and_header_injection_are_422_naming_the_field(
        client, clinic, session, field, value):
    response = post_visit(client, clinic[1], **{field: value})
    assert response.status_code == 422, response.get_json()
    assert f"client.{field}" in response.get_json()["fields"]
    assert count(session, Client) == 0


def test_control_characters_in_the_external_id_and_note_are_422(client, clinic, session):
    body = {"external_id": "booking\x00981", "client": {"name": "Ana", "email": "a@example.com"}}
    response = client.post("/api/v1/visits", json=body, headers=auth(clinic[1]))
    assert response.status_code == 422 and "external_id" in response.get_json()["fields"]
    response = client.post("/api/v1/escalations/1/acknowledge", json={"note": "called\x00"},
                           headers=auth(clinic[1]))
    assert response.status_code == 404  # no escalation 1: the id is checked first


@pytest.mark.parametrize("path", ["/api/v1/visits/99999999999999999999",
                                  "/api/v1/clients/9223372036854775808",
                                  "/api/v1/clients/2147483648/audit"])
def test_ids_too_big_for_the_database_are_404(client, clinic, path):
    response = client.get(path, headers=auth(clinic[1]))
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


# --- stored as given, shown escaped ------------------------------------------------------------

@pytest.mark.parametrize("name", HOSTILE)
def test_injection_strings_are_stored_as_given_and_escaped_on_pages(client, clinic, session,
                                                                    name):
    response = post_visit(client, clinic[1], name=name, email="ana@example.com")
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    client_id = response.get_json()["client_id"]
    assert client.get(f"/api/v1/clients/{client_id}",
                      headers=auth(clinic[1])).get_json()["name"] == name
    assert count(session, Client) == 1  # the DROP TABLE was only text

    owner = make_staff(session, clinic[0], "owner@clinic.example")
    log_in(client, owner.email)
    page = client.get(f"/clients/{client_id}").get_data(as_text=True)
    assert str(escape(name)) in page  # escaped where it is shown ...
    if "<" in name:
        assert name not in page  # ... and never as raw HTML


@pytest.mark.parametrize("name", HOSTILE[1:3])
def test_injection_strings_are_escaped_in_the_html_email(app, client, clinic, settings,
                                                         providers, name):
    _, smtp = providers
    with freeze_time(NOW):
        assert post_visit(client, clinic[1], name=f"{name} Ruiz").status_code == 201
    config = app.extensions["aftercare.config"]
    with freeze_time(NOW + timedelta(minutes=1), real_asyncio=True):
        Dispatcher(config, app.extensions["aftercare.engine"], "w").drain()
    [email] = smtp.wait_for(1)
    html = email.message.get_body(("html",)).get_content()
    assert "<script>" not in html and "<img" not in html
    assert "&lt;" in html


def test_an_email_recipient_with_a_line_break_is_failed_never_sent(app, client, clinic, session,
                                                                   providers):
    """Rows written by other paths (an old import, a manual fix) are checked again at send."""
    _, smtp = providers
    with freeze_time(NOW):
        assert post_visit(client, clinic[1]).status_code == 201
    [row] = session.exec(select(Message).where(Message.kind == "window_start")).all()
    row.recipient = "ana@example.com\r\nBcc: victim@example.com"
    session.add(row)
    session.commit()
    with freeze_time(NOW + timedelta(minutes=1), real_asyncio=True):
        Dispatcher(app.extensions["aftercare.config"], app.extensions["aftercare.engine"],
                   "w").drain()
    session.expire_all()
    row = session.get(Message, row.id)
    assert (row.status, row.error_code) == ("failed", "invalid-recipient")
    assert smtp.messages == []


# --- webhooks: replays and forgeries -------------------------------------------------------------

def signed(url: str, form: dict) -> str:
    return RequestValidator(AUTH_TOKEN).compute_signature(url, form)


def test_a_signed_inbound_replayed_to_the_status_url_is_403(client, session, providers):
    form = {"MessageSid": "SM" + "1" * 32, "From": "+12025550123", "To": FROM_NUMBER,
            "Body": "STOP"}
    signature = signed(f"{PUBLIC_URL}/webhooks/twilio/sms", form)
    response = client.post("/webhooks/twilio/status?m=1", data=form,
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403 and response.get_json()["error"] == "forbidden"


def test_a_signed_status_callback_replayed_for_another_message_is_403(
        client, clinic, session, providers):
    now = datetime.now(UTC)
    for n in (1, 2):
        session.add(Message(clinic_id=clinic[0].id, kind="checkin", channel="sms",
                            recipient=f"+1202555012{n}", due_at=now, next_attempt_at=now,
                            status="sent", provider_id=f"SM{n:032d}", dedupe_key=f"m{n}"))
    session.commit()
    form = {"MessageSid": f"SM{1:032d}", "MessageStatus": "delivered"}
    signature = signed(f"{PUBLIC_URL}/webhooks/twilio/status?m=1", form)
    for path, data in [("/webhooks/twilio/status?m=2", form),  # another row
                       ("/webhooks/twilio/status?m=1", form | {"MessageStatus": "failed"}),
                       ("/webhooks/twilio/status?m=1", form | {"ErrorCode": "30007"})]:
        response = client.post(path, data=data, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 403
    session.expire_all()
    assert {m.status for m in session.exec(select(Message)).all()} == {"sent"}
    assert client.post("/webhooks/twilio/status?m=1", data=form,
                       headers={"X-Twilio-Signature": signature}).status_code == 204


def test_a_signed_inbound_with_nul_or_bad_bytes_is_stored_cleaned(client, session, providers):
    form = {"MessageSid": "SM" + "2" * 32, "From": "+12025550123", "To": FROM_NUMBER,
            "Body": "pain\x00 6 \ufffd"}
    response = client.post("/webhooks/twilio/sms", data=form,
                           headers={"X-Twilio-Signature": signed(
                               f"{PUBLIC_URL}/webhooks/twilio/sms", form)})
    assert response.status_code == 200
    [inbound] = session.exec(select(InboundMessage)).all()
    assert inbound.body == "pain 6 \ufffd"
