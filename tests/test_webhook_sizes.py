"""Sizes at the webhooks (issue 14, item 7): addresses and Twilio ids are checked at the edge, so a
value our columns cannot hold is a 400 naming the field, never a 500 that Twilio retries, and a
WhatsApp-style address reaches the client it belongs to."""

import pytest
from sqlmodel import func, select
from twilio.request_validator import RequestValidator

from service.models import Client, InboundMessage, Message, utcnow
from tests.conftest import AUTH_TOKEN, BOTH_BACKENDS, FROM_NUMBER, PUBLIC_URL

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS)

PHONE = "+12025550123"
SID = "SM" + "a1" * 16


@pytest.fixture
def settings(settings):
    settings["TWILIO_AUTH_TOKEN"] = AUTH_TOKEN
    return settings


@pytest.fixture
def ana(session, clinic):
    client = Client(clinic_id=clinic[0].id, name="Ana Ruiz", phone=PHONE,
                    time_zone="America/New_York")
    session.add(client)
    session.commit()
    return client


def post_signed(web, path: str, form: dict):
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, form)
    return web.post(path, data=form, headers={"X-Twilio-Signature": signature})


def inbound(web, **fields):
    form = {"MessageSid": SID, "SmsSid": SID, "AccountSid": "AC" + "0" * 32, "From": PHONE,
            "To": FROM_NUMBER, "Body": "hello"} | fields
    return post_signed(web, "/webhooks/twilio/sms", {k: v for k, v in form.items() if v is not None})


def stored(session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_a_whatsapp_address_is_stored_as_the_number_and_reaches_its_client(client, session, ana):
    response = inbound(client, From=f"whatsapp:{PHONE}", To=f"whatsapp:{FROM_NUMBER}")
    assert response.status_code == 200
    [row] = session.exec(select(InboundMessage)).all()
    assert (row.from_number, row.to_number, row.client_id) == (PHONE, FROM_NUMBER, ana.id)


@pytest.mark.parametrize(("field", "value"), [
    ("From", "hello"),
    ("From", "+1202555012345678901"),   # 19 digits: longer than E.164 allows
    ("From", "whatsapp:" + "9" * 30),
    ("From", "messenger:1234567890"),   # no phone number left once the prefix is off
    ("To", "+" + "1" * 40),
    ("MessageSid", "SM" + "a" * 64),    # longer than the column
    ("MessageSid", "SM123"),
    ("SmsSid", "SM" + "g" * 32),        # not hex
    ("AccountSid", "AC" + "1" * 33),
    ("MessagingServiceSid", "MG-not-a-sid"),
])
def test_a_field_not_of_twilios_shape_is_400_naming_it_and_stores_nothing(
        client, session, ana, field, value):
    response = inbound(client, **{field: value})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "bad_request" and list(body["fields"]) == [field]
    assert stored(session, InboundMessage) == 0 and stored(session, Message) == 0


@pytest.fixture
def sent(session, clinic):
    now = utcnow()
    message = Message(clinic_id=clinic[0].id, kind="checkin", channel="sms", recipient=PHONE,
                      due_at=now, next_attempt_at=now, status="sent", provider_id=None,
                      dedupe_key="m1")
    session.add(message)
    session.commit()
    return message


@pytest.mark.parametrize(("field", "value"), [
    ("MessageSid", "SM" + "b" * 70),
    ("AccountSid", "not-an-account"),
    ("ErrorCode", "3" * 40),
])
def test_a_status_callback_not_of_twilios_shape_is_400_and_changes_nothing(
        client, session, sent, field, value):
    form = {"MessageSid": SID, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    response = post_signed(client, f"/webhooks/twilio/status?m={sent.id}", form | {field: value})
    assert response.status_code == 400
    assert list(response.get_json()["fields"]) == [field]
    session.expire_all()
    row = session.get(Message, sent.id)
    assert (row.status, row.provider_id, row.error_code) == ("sent", None, None)


def test_a_status_callback_of_twilios_shape_is_recorded(client, session, sent):
    form = {"MessageSid": SID, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert post_signed(client, f"/webhooks/twilio/status?m={sent.id}", form).status_code == 204
    session.expire_all()
    row = session.get(Message, sent.id)
    assert (row.status, row.provider_id, row.error_code) == ("undelivered", SID, "30003")
