"""Twilio's delivery-status callbacks: signed, out of order, never stepping a final status back."""

import pytest
from sqlmodel import select
from twilio.request_validator import RequestValidator

from service.models import Message, utcnow
from tests.conftest import AUTH_TOKEN, PUBLIC_URL

SID = "SM" + "1" * 32  # Twilio's shape: two letters and 32 hex digits


@pytest.fixture
def settings(settings):
    settings["TWILIO_AUTH_TOKEN"] = AUTH_TOKEN
    return settings


@pytest.fixture
def sent(session, clinic):
    message = Message(clinic_id=clinic[0].id, kind="checkin", channel="sms",
                      recipient="+12025550123", due_at=utcnow(), next_attempt_at=utcnow(),
                      status="sent", provider_id=SID, dedupe_key="m1")
    session.add(message)
    session.commit()
    return message


def callback(client, message_id, status, sid=SID, signature=None, error_code=None):
    path = f"/webhooks/twilio/status?m={message_id}"
    form = {"MessageSid": sid, "MessageStatus": status}
    if error_code:
        form["ErrorCode"] = error_code
    if signature is None:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, form)
    return client.post(path, data=form, headers={"X-Twilio-Signature": signature})


def status_of(session, message):
    session.expire_all()
    return session.exec(select(Message).where(Message.id == message.id)).one()


def test_delivered_is_recorded(client, session, sent):
    assert callback(client, sent.id, "delivered").status_code == 204
    row = status_of(session, sent)
    assert row.status == "delivered" and row.delivered_at is not None


def test_a_late_intermediate_or_final_status_never_steps_back(client, session, sent):
    callback(client, sent.id, "delivered")
    callback(client, sent.id, "sent")
    callback(client, sent.id, "undelivered", error_code="30003")
    assert status_of(session, sent).status == "delivered"


def test_undelivered_keeps_the_error_code(client, session, sent):
    callback(client, sent.id, "undelivered", error_code="30003")
    row = status_of(session, sent)
    assert (row.status, row.error_code) == ("undelivered", "30003")


def test_a_callback_for_another_sid_changes_nothing(client, session, sent):
    callback(client, sent.id, "delivered", sid="SM" + "2" * 32)
    assert status_of(session, sent).status == "sent"


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl"])
def test_unsigned_or_forged_callbacks_are_403_and_change_nothing(client, session, sent,
                                                                 signature):
    response = callback(client, sent.id, "delivered", signature=signature)
    assert response.status_code == 403
    assert status_of(session, sent).status == "sent"


def test_a_signature_for_another_message_is_403(client, session, sent):
    other = RequestValidator(AUTH_TOKEN).compute_signature(
        f"{PUBLIC_URL}/webhooks/twilio/status?m=999", {"MessageSid": SID,
                                                       "MessageStatus": "delivered"})
    assert callback(client, sent.id, "delivered", signature=other).status_code == 403
    assert status_of(session, sent).status == "sent"
