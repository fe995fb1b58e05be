"""Two-way SMS end to end: a signed webhook from Twilio, what the service records, and what the
fake Twilio server and the SMTP server then receive."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from twilio.request_validator import RequestValidator

from service.care.escalations import renotify
from service.models import Appointment, AuditEvent, CheckIn, Client, Escalation, InboundMessage, Message
from tests.conftest import AUTH_TOKEN, BOTH_BACKENDS, FROM_NUMBER, auth, make_clinic
from tests.helpers import (
    NOW,
    ON_CALL_PHONE,
    PHONE,
    WEBHOOK_URL,
    at,
    count_rows,
    drain,
    enrol,
    signed_post,
    text,
    texts_to,
)

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS)


@pytest.fixture
def enrolled(client, clinic, providers, dispatcher):
    """A client enrolled at NOW whose first text went out."""
    visit = enrol(client, clinic[1])
    drain(dispatcher, NOW + timedelta(seconds=10))
    providers[0].reset()
    return visit


# --- the webhook -------------------------------------------------------------------------------

def test_signed_webhook_is_stored_and_answered_with_twiml(client, session, enrolled):
    response = text(client, "2", NOW + timedelta(hours=25))
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True).endswith("<Response />")
    [inbound] = session.exec(select(InboundMessage)).all()
    assert (inbound.body, inbound.intent, inbound.client_id) == ("2", "checkin",
                                                                 enrolled["client_id"])


@pytest.mark.parametrize("signature", ["", "forged", "tampered"])
def test_bad_signature_is_403_and_stores_nothing(client, session, enrolled, signature):
    form = {"MessageSid": "SMbad", "From": PHONE, "To": FROM_NUMBER, "Body": "STOP"}
    if signature == "tampered":  # signed for another body, replayed with this one
        signature = RequestValidator(AUTH_TOKEN).compute_signature(WEBHOOK_URL, {**form, "Body": "1"})
    response = signed_post(client, form, signature=signature)
    assert response.status_code == 403
    assert count_rows(session, InboundMessage) == 0
    assert session.exec(select(Client)).one().sms_opted_out_at is None


def test_a_retried_webhook_changes_nothing_the_second_time(client, session, enrolled):
    moment = NOW + timedelta(hours=25)
    text(client, "3", moment, sid="SM" + "e" * 32)
    before = [count_rows(session, m) for m in (InboundMessage, Message, CheckIn, Escalation,
                                               AuditEvent)]
    text(client, "3", moment + timedelta(seconds=30), sid="SM" + "e" * 32)
    after = [count_rows(session, m) for m in (InboundMessage, Message, CheckIn, Escalation,
                                              AuditEvent)]
    assert after == before


# --- STOP, START, HELP ---------------------------------------------------------------------------

@pytest.mark.parametrize("words", ["STOP", "stop", "Unsubscribe", "please don't text me anymore",
                                   "ALTO"])
def test_stop_cancels_every_later_text_and_confirms_once(client, session, providers, dispatcher,
                                                         enrolled, words):
    twilio, _ = providers
    text(client, words, NOW + timedelta(minutes=30))
    text(client, "STOP", NOW + timedelta(minutes=31))  # a second STOP is not confirmed again
    for hours in (1, 3, 7, 25, 73, 24 * 8):
        drain(dispatcher, NOW + timedelta(hours=hours))
    [confirmation] = texts_to(twilio, PHONE)
    assert "START" in confirmation
    pending = select(Message).where(Message.client_id == enrolled["client_id"],
                                    Message.kind.in_(("hydration", "heat", "checkin")))
    assert {m.status for m in session.exec(pending)} == {"cancelled"}
    assert session.exec(select(Client)).one().sms_opted_out_at is not None


def test_start_resumes_future_texts(client, session, providers, dispatcher, enrolled):
    twilio, _ = providers
    text(client, "STOP", NOW + timedelta(minutes=30))
    drain(dispatcher, NOW + timedelta(hours=3))  # the hydration tip (2 h) is skipped
    text(client, "START", NOW + timedelta(hours=4))
    drain(dispatcher, NOW + timedelta(hours=4, seconds=5))
    drain(dispatcher, NOW + timedelta(hours=25))
    bodies = texts_to(twilio, PHONE)
    assert "START" in bodies[0] and "texts are on again" in bodies[1]
    assert "How does your back feel" in bodies[-1]  # the 24-hour check-in came back
    assert not any("water" in b.lower() and "tip" in b.lower() for b in bodies[2:])
    statuses = {m.kind: m.status for m in session.exec(select(Message)).all()}
    assert statuses["hydration"] == "cancelled" and statuses["checkin"] == "sent"


def test_help_answers_with_the_clinic_phone(client, providers, dispatcher, enrolled):
    text(client, "HELP", NOW + timedelta(hours=1))
    drain(dispatcher, NOW + timedelta(hours=1, seconds=2))
    [answer] = texts_to(providers[0], PHONE)
    assert "(202) 555-0100" in answer and "STOP" in answer  # the clinic, as a US phone dials it


# --- check-ins and escalation ----------------------------------------------------------------

def test_better_is_recorded_and_the_follow_up_skipped(client, session, providers, dispatcher,
                                                      enrolled):
    text(client, "1", NOW + timedelta(hours=25))
    drain(dispatcher, NOW + timedelta(hours=73))
    [checkin] = session.exec(select(CheckIn)).all()
    assert (checkin.answer, checkin.visit_id) == ("better", enrolled["id"])
    followup = session.exec(select(Message).where(Message.kind == "followup")).one()
    assert (followup.status, followup.error_code) == ("skipped", "client_better")
    assert count_rows(session, Escalation) == 0


def test_same_keeps_the_follow_up(client, session, providers, dispatcher, enrolled):
    text(client, "2", NOW + timedelta(hours=25))
    drain(dispatcher, NOW + timedelta(hours=73))
    assert session.exec(select(Message).where(Message.kind == "followup")).one().status == "sent"


def test_worse_opens_one_concern_advises_the_client_and_alerts_on_call(
        client, session, providers, dispatcher, enrolled):
    twilio, smtp = providers
    moment = NOW + timedelta(hours=25)
    text(client, "3", moment)
    text(client, "worse again, pain 8", moment + timedelta(minutes=5))  # adds, pages no more
    drain(dispatcher, moment + timedelta(minutes=6))
    [escalation] = session.exec(select(Escalation)).all()
    assert (escalation.severity, escalation.status) == ("concern", "open")
    assert "said worse" in escalation.reasons and "pain 8/10" in escalation.reasons
    advice = [b for b in texts_to(twilio, PHONE) if "pause back walking" in b]
    assert len(advice) == 2  # each worrying reply is answered
    [alert] = texts_to(twilio, ON_CALL_PHONE)
    assert "Ana Ruiz" in alert and f"/clients/{enrolled['client_id']}" in alert
    [email] = smtp.wait_for(1)
    assert email.rcpt_tos == ["oncall@example.com"] and "Ana Ruiz" in email.subject


@pytest.mark.parametrize("reply, escalates", [
    ("pain 5", False),  # baseline 4: +1 is within the noise
    ("pain 6", True),  # +2 from baseline: the smallest change that matters
    ("7", True),  # 7 or more, whatever the baseline
    ("3/10", False),
])
def test_pain_scores_against_the_baseline(client, session, enrolled, reply, escalates):
    text(client, reply, NOW + timedelta(hours=25))
    assert count_rows(session, Escalation) == (1 if escalates else 0)


def test_a_red_flag_at_3am_pages_on_call_at_once(client, session, providers, dispatcher,
                                                 enrolled):
    night = datetime(2026, 6, 11, 7, 0, tzinfo=UTC)  # 03:00 in New York
    text(client, "my leg is numb and I can't stand", night)
    drain(dispatcher, night + timedelta(seconds=5))
    escalation = session.exec(select(Escalation)).one()
    assert escalation.severity == "urgent"
    assert any("URGENT" in b for b in texts_to(providers[0], ON_CALL_PHONE))
    assert any("urgent medical care" in b for b in texts_to(providers[0], PHONE))


def test_a_concern_at_3am_answers_the_client_now_and_the_clinic_at_8(
        client, session, providers, dispatcher, enrolled):
    night = datetime(2026, 6, 11, 7, 0, tzinfo=UTC)  # 03:00 in New York
    text(client, "worse", night)
    drain(dispatcher, night + timedelta(seconds=5))
    assert any("pause back walking" in b for b in texts_to(providers[0], PHONE))
    assert texts_to(providers[0], ON_CALL_PHONE) == []  # concern alerts respect quiet hours
    drain(dispatcher, datetime(2026, 6, 11, 12, 0, 5, tzinfo=UTC))  # 08:00 local
    assert len(texts_to(providers[0], ON_CALL_PHONE)) == 1


def test_concern_then_red_flag_upgrades_and_pages_again(client, session, providers, dispatcher,
                                                        enrolled):
    moment = NOW + timedelta(hours=25)
    text(client, "3", moment)
    text(client, "now I have a fever", moment + timedelta(minutes=10))
    drain(dispatcher, moment + timedelta(minutes=11))
    [escalation] = session.exec(select(Escalation)).all()
    assert escalation.severity == "urgent"
    alerts = texts_to(providers[0], ON_CALL_PHONE)
    assert len(alerts) == 2 and any("URGENT" in a for a in alerts)


def test_stop_with_a_red_flag_still_reaches_the_clinic(client, session, providers, dispatcher,
                                                       enrolled):
    moment = NOW + timedelta(hours=25)
    text(client, "stop texting me, I can't walk", moment)
    drain(dispatcher, moment + timedelta(seconds=5))
    assert session.exec(select(Escalation)).one().severity == "urgent"
    assert len(texts_to(providers[0], ON_CALL_PHONE)) == 1
    [only] = texts_to(providers[0], PHONE)
    assert "START" in only  # the opt-out confirmation is the one text they get


def test_renotification_every_30_minutes_until_acknowledged(app, client, clinic, session,
                                                            providers, dispatcher, enrolled):
    engine = app.extensions["aftercare.engine"]
    opened = NOW + timedelta(hours=25)
    text(client, "3", opened)
    for minutes, expected in [(29, 0), (30, 1), (59, 0), (60, 1), (90, 1), (120, 0), (150, 0)]:
        with at(opened + timedelta(minutes=minutes)):
            assert renotify(engine) == expected, minutes
    escalation = session.exec(select(Escalation)).one()
    assert escalation.notify_count == 3
    drain(dispatcher, opened + timedelta(minutes=151))
    alerts = texts_to(providers[0], ON_CALL_PHONE)  # sent together: in any order
    assert sorted("reminder" in a for a in alerts) == [False, True, True, True]
    assert any("reminder 3" in a for a in alerts)


def test_acknowledging_stops_the_renotifications(app, client, clinic, session, providers,
                                                 enrolled):
    engine = app.extensions["aftercare.engine"]
    opened = NOW + timedelta(hours=25)
    text(client, "3", opened)
    with at(opened + timedelta(minutes=30)):
        assert renotify(engine) == 1
    escalation = session.exec(select(Escalation)).one()
    with at(opened + timedelta(minutes=45)):
        response = client.post(f"/api/v1/escalations/{escalation.id}/acknowledge",
                               json={"note": "called her, resting"}, headers=auth(clinic[1]))
    assert response.status_code == 200 and response.get_json()["status"] == "acknowledged"
    with at(opened + timedelta(minutes=120)):
        assert renotify(engine) == 0
    again = client.post(f"/api/v1/escalations/{escalation.id}/acknowledge",
                        headers=auth(clinic[1]))
    assert again.status_code == 409
    _, other_key = make_clinic(session, name="Other Clinic")
    assert client.post(f"/api/v1/escalations/{escalation.id}/acknowledge",
                       headers=auth(other_key)).status_code == 404


# --- appointments, unknown text, shared numbers, audit ----------------------------------------

@pytest.mark.parametrize("reply, status", [("C", "confirmed"), ("yes", "confirmed"),
                                           ("R", "reschedule_requested")])
def test_reminder_answers_update_the_appointment(client, clinic, session, providers, dispatcher,
                                                 reply, status):
    starts = NOW + timedelta(days=3)
    enrol(client, clinic[1], next_appointment={"starts_at": starts.isoformat()})
    drain(dispatcher, starts - timedelta(hours=23, minutes=59))
    text(client, reply, starts - timedelta(hours=20))
    assert session.exec(select(Appointment)).one().status == status
    drain(dispatcher, starts - timedelta(hours=20) + timedelta(seconds=5))
    assert "Thanks" in texts_to(providers[0], PHONE)[-1]


def test_unknown_text_is_kept_and_clarified_once_a_day(client, session, providers, dispatcher,
                                                       enrolled):
    moment = NOW + timedelta(hours=5)
    text(client, "who is this?", moment)
    text(client, "hello??", moment + timedelta(minutes=1))
    drain(dispatcher, moment + timedelta(minutes=2))
    clarifications = [b for b in texts_to(providers[0], PHONE) if "the team will read it" in b]
    assert len(clarifications) == 1
    assert count_rows(session, InboundMessage, InboundMessage.intent == "unknown") == 2


def test_a_shared_number_belongs_to_the_clinic_that_texted_it_last(client, clinic, session,
                                                                    providers, dispatcher):
    _, other_key = make_clinic(session, name="Other Clinic")
    enrol(client, clinic[1])
    drain(dispatcher, NOW + timedelta(seconds=10))
    later = NOW + timedelta(hours=1)
    other = enrol(client, other_key, moment=later)
    drain(dispatcher, later + timedelta(seconds=10))
    text(client, "2", later + timedelta(minutes=5))
    [inbound] = session.exec(select(InboundMessage)).all()
    assert inbound.client_id == other["client_id"]


def test_the_audit_log_tells_the_story(client, clinic, enrolled):
    moment = NOW + timedelta(hours=25)
    text(client, "3", moment)
    text(client, "STOP", moment + timedelta(minutes=1))
    events = client.get(f"/api/v1/clients/{enrolled['client_id']}/audit",
                        headers=auth(clinic[1])).get_json()["events"]
    actions = [e["action"] for e in events]
    assert actions[0] == "visit_enrolled"
    assert actions[1:] == ["inbound_interpreted", "escalation_opened", "escalation_paged",
                           "inbound_interpreted", "opted_out"]
    checkins = client.get(f"/api/v1/clients/{enrolled['client_id']}/checkins",
                          headers=auth(clinic[1])).get_json()["checkins"]
    assert [c["answer"] for c in checkins] == ["worse"]
    escalations = client.get(f"/api/v1/clients/{enrolled['client_id']}/escalations",
                             headers=auth(clinic[1])).get_json()["escalations"]
    assert escalations[0]["severity"] == "concern"
