"""Each clinic its own sender (issue 14, items 1-3): set with the CLI or in settings, checked by
`doctor`; each clinic's texts leave from it, and a reply, a STOP or a status callback belongs to
the clinic whose sender it came to, whoever texted that phone last."""

from datetime import timedelta
from itertools import count

import pytest
from sqlmodel import select
from twilio.request_validator import RequestValidator

from service.models import AuditEvent, CheckIn, Client, Clinic, Escalation, InboundMessage
from service.ops.metrics import INBOUND_UNROUTED
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, make_clinic
from tests.helpers import NOW, PHONE, at, drain, enrol, messages, signed_post
from tests.web_helpers import csrf_token, log_in, make_staff

A_NUMBER, B_NUMBER = "+12025550170", "+12025550180"
B_SERVICE = "MG" + "b" * 32
_sids = count(1)


def clinics(session) -> dict[str, Clinic]:
    session.expire_all()
    return {c.name: c for c in session.exec(select(Clinic))}


# --- setting the sender: create-clinic, set-sender, settings, doctor ------------------------------

def test_a_second_clinic_without_its_own_sender_is_refused(runner, session):
    assert runner.invoke(args=["create-clinic", "A", "--phone", "+12025550100"]).exit_code == 0
    refused = runner.invoke(args=["create-clinic", "B", "--phone", "+12025550100"])
    assert refused.exit_code == 1
    assert "each needs its own sender" in refused.output
    assert "without one so far: 1 (A)" in refused.output
    assert set(clinics(session)) == {"A"}

    created = runner.invoke(args=["create-clinic", "B", "--phone", "+12025550100",
                                  "--messaging-service", B_SERVICE, "--daily-send-cap", "200"])
    assert created.exit_code == 0, created.output
    assert "clinic 1 (A) has no sender of its own: aftercare set-sender 1" in created.output
    b = clinics(session)["B"]
    assert (b.sms_sender, b.daily_send_cap) == (B_SERVICE, 200)


@pytest.mark.parametrize("args, reason", [
    (["--sender", A_NUMBER, "--messaging-service", B_SERVICE], "not both"),
    (["--sender", B_SERVICE], "Invalid value for '--sender'"),
    (["--messaging-service", A_NUMBER], "MG and 32 lowercase hex digits"),
    (["--messaging-service", "MG123"], "MG and 32 lowercase hex digits"),
    (["--sender", "+1555"], "Invalid value for '--sender'"),
    (["--daily-send-cap", "0"], "Invalid value for '--daily-send-cap'"),
])
def test_create_clinic_checks_the_sender(runner, session, args, reason):
    result = runner.invoke(args=["create-clinic", "X", "--phone", "+12025550100", *args])
    assert result.exit_code == 2 and reason in result.output, result.output
    assert clinics(session) == {}


def test_set_sender_gives_a_clinic_its_own_and_refuses_another_clinics(runner, session):
    make_clinic(session, name="A")
    make_clinic(session, name="B", sms_sender=B_NUMBER)
    a = clinics(session)["A"]
    taken = runner.invoke(args=["set-sender", str(a.id), "--sender", B_NUMBER])
    assert taken.exit_code == 1 and f"{B_NUMBER} is another clinic's sender" in taken.output
    assert runner.invoke(args=["set-sender", str(a.id)]).exit_code == 2
    done = runner.invoke(args=["set-sender", str(a.id), "--sender", "(202) 555-0170"])
    assert done.exit_code == 0, done.output
    assert clinics(session)["A"].sms_sender == A_NUMBER


def doctor(settings):
    from service import create_app

    return create_app(settings, serving=False).test_cli_runner().invoke(args=["doctor"]).output


def test_doctor_fails_while_clinics_share_the_default_sender(settings, session):
    make_clinic(session, name="A")
    assert "clinic sender" not in doctor(settings)  # one clinic: the default is its own
    make_clinic(session, name="B", sms_sender=B_NUMBER)
    output = doctor(settings)
    assert ("FAIL  clinic sender: clinic 1 (A) shares the default sender with other clinics: "
            "aftercare set-sender 1 --sender +1...") in output
    a = clinics(session)["A"]
    a.sms_sender = A_NUMBER
    session.add(a)
    session.commit()
    assert "ok    clinic senders: each of the 2 clinics has its own" in doctor(settings)


def test_owners_set_the_sender_and_the_cap_in_settings(client, session):
    a, _ = make_clinic(session, name="A")
    make_clinic(session, name="B", sms_sender=B_NUMBER)
    log_in(client, make_staff(session, a, "owner@a.example").email)

    def save(**form):
        token = csrf_token(client.get("/settings"))
        return client.post("/settings/sender", data={"csrf_token": token, **form})

    assert "another clinic of this service sends from it" in save(
        sms_sender=B_NUMBER).get_data(as_text=True)
    assert "each needs its own number" in save(sms_sender="").get_data(as_text=True)
    assert save(sms_sender="MG12", daily_send_cap="x").status_code == 422
    assert clinics(session)["A"].sms_sender is None
    assert save(sms_sender="202-555-0170", daily_send_cap="150").status_code == 302
    a = clinics(session)["A"]
    assert (a.sms_sender, a.daily_send_cap) == (A_NUMBER, 150)
    assert f'value="{A_NUMBER}"' in client.get("/settings").get_data(as_text=True)
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "sender_changed",
                                                 AuditEvent.clinic_id == a.id)).one()


# --- sending from, and routing by, each clinic's sender ----------------------------------------

B_POOL_NUMBER = "+12025550181"  # the number B's Messaging Service picked from its pool
UNKNOWN_NUMBER = "+12025550199"


@pytest.fixture
def two_clinics(client, session, providers, dispatcher):
    """Ana's phone is a client at A (texting from its own number) and at B (through its own
    Messaging Service); B enrolled her first, so A texted her last."""
    (a, a_key), (b, b_key) = (make_clinic(session, name="A", sms_sender=A_NUMBER),
                              make_clinic(session, name="B", sms_sender=B_SERVICE))
    ids = {"B": enrol(client, b_key)["client"]["id"]}
    drain(dispatcher, NOW + timedelta(seconds=10))
    ids["A"] = enrol(client, a_key, NOW + timedelta(minutes=1))["client"]["id"]
    drain(dispatcher, NOW + timedelta(minutes=1, seconds=10))
    ana_a, ana_b = session.get(Client, ids["A"]), session.get(Client, ids["B"])
    assert ana_a.last_messaged_at > ana_b.last_messaged_at
    return a, b, ana_a, ana_b


def texted(client, body, moment, to, service=None):
    form = {"MessageSid": f"SM{next(_sids):032d}", "From": PHONE, "To": to, "Body": body}
    if service:
        form["MessagingServiceSid"] = service
    with at(moment):
        assert signed_post(client, form).status_code == 200
    return form["MessageSid"]


def test_each_clinics_texts_leave_from_its_own_sender(session, providers, two_clinics):
    a, b, _, _ = two_clinics
    sent = {m.sid: m for m in providers[0].messages}
    rows = messages(session, channel="sms", status="sent")
    assert {row.clinic_id for row in rows} == {a.id, b.id}
    for row in rows:
        form = sent[row.provider_id].form
        if row.clinic_id == a.id:
            assert (form.get("From"), form.get("MessagingServiceSid")) == (A_NUMBER, None)
        else:
            assert (form.get("From"), form.get("MessagingServiceSid")) == (None, B_SERVICE)


def test_a_reply_to_bs_sender_lands_only_at_b_though_a_texted_last(client, session, two_clinics,
                                                                   dispatcher):
    a, b, ana_a, ana_b = two_clinics
    sid = texted(client, "Still numb in my left leg, taking oxycodone", NOW + timedelta(hours=1),
                 B_POOL_NUMBER, B_SERVICE)
    inbound = session.exec(select(InboundMessage).where(InboundMessage.provider_sid == sid)).one()
    assert (inbound.clinic_id, inbound.client_id) == (b.id, ana_b.id)
    assert [c.client_id for c in session.exec(select(CheckIn))] == [ana_b.id]
    assert [(e.clinic_id, e.severity) for e in session.exec(select(Escalation))] == [(b.id, "urgent")]
    assert not session.exec(select(AuditEvent).where(AuditEvent.clinic_id == a.id,
                                                     AuditEvent.actor == "client")).all()
    assert session.exec(select(AuditEvent).where(
        AuditEvent.clinic_id == b.id, AuditEvent.action == "inbound_interpreted")).one()
    drain(dispatcher, NOW + timedelta(hours=1, seconds=5))
    advice = messages(session, kind="urgent_advice")
    assert [(m.clinic_id, m.status) for m in advice] == [(b.id, "sent")]


def test_stop_to_as_number_stops_only_as_texts(client, session, two_clinics, dispatcher,
                                               providers):
    a, b, ana_a, ana_b = two_clinics
    texted(client, "STOP", NOW + timedelta(minutes=30), A_NUMBER)
    session.expire_all()
    assert session.get(Client, ana_a.id).sms_opted_out_at is not None
    assert session.get(Client, ana_b.id).sms_opted_out_at is None
    drain(dispatcher, NOW + timedelta(hours=3))  # the hydration tips are due
    hydration = {m.clinic_id: m.status for m in messages(session, kind="hydration", channel="sms")}
    assert hydration == {a.id: "cancelled", b.id: "sent"}
    stops = session.exec(select(AuditEvent).where(AuditEvent.action == "opted_out")).all()
    assert [(e.clinic_id, e.client_id) for e in stops] == [(a.id, ana_a.id)]


def status_callback(client, message_id, **form):
    form = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "delivered", **form}
    url = f"{PUBLIC_URL}/webhooks/twilio/status?m={message_id}"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    return client.post(f"/webhooks/twilio/status?m={message_id}", data=form,
                       headers={"X-Twilio-Signature": signature})


def test_status_callbacks_count_only_from_the_rows_own_sender(client, session, two_clinics):
    a, b, _, _ = two_clinics
    row = messages(session, clinic_id=a.id, status="sent")[0]
    ignored = INBOUND_UNROUTED.labels("status")._value.get()
    assert status_callback(client, row.id, MessageSid=row.provider_id, From=B_POOL_NUMBER,
                           MessagingServiceSid=B_SERVICE).status_code == 204
    assert messages(session, id=row.id)[0].status == "sent"
    assert INBOUND_UNROUTED.labels("status")._value.get() == ignored + 1
    assert status_callback(client, row.id, MessageSid=row.provider_id,
                           From=A_NUMBER).status_code == 204
    assert messages(session, id=row.id)[0].status == "delivered"


def test_a_text_to_no_clinics_sender_is_kept_unrouted_and_counted(client, session, two_clinics):
    before = INBOUND_UNROUTED.labels("inbound_sms")._value.get()
    sid = texted(client, "3", NOW + timedelta(hours=1), UNKNOWN_NUMBER)
    inbound = session.exec(select(InboundMessage).where(InboundMessage.provider_sid == sid)).one()
    assert (inbound.clinic_id, inbound.client_id) == (None, None)
    assert session.exec(select(CheckIn)).all() == []
    assert INBOUND_UNROUTED.labels("inbound_sms")._value.get() == before + 1
