"""One channel by default: each plan message goes once, on the client's preferred channel, and on
the other only after a permanent failure or an opt-out; both only when someone chose both."""

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session

from service.care.enrolment import replan_channels
from service.domain.careplan import channels_for
from service.messaging import outbox
from service.models import Client, Clinic, Message
from tests.conftest import BOTH_BACKENDS
from tests.helpers import EMAIL, NOW, PHONE, at, enrol, messages, text
from tests.web_helpers import csrf_token, log_in, make_staff

PLAN = ["window_start", "hydration", "heat", "checkin", "followup", "rebook_nudge"]
WITH_EMAIL = {"email": EMAIL}  # phone, consent and email: the rule has both to choose from


def sent_per_kind(session) -> Counter:
    """How many times each plan message went out, whatever the channel."""
    return Counter(m.kind for m in messages(session) if m.status in ("sent", "delivered"))


def set_up(session, model, row_id, **values):
    row = session.get(model, row_id)
    for name, value in values.items():
        setattr(row, name, value)
    session.add(row)
    session.commit()
    return row


def replan(app, client_id, moment, **changes):
    """What the client page and the SMS webhook do: change the client, then re-decide."""
    with Session(app.extensions["aftercare.engine"]) as s:
        target = s.get(Client, client_id)
        for name, value in changes.items():
            setattr(target, name, value)
        s.add(target)
        replan_channels(s, target, moment)
        s.commit()


# --- the rule ----------------------------------------------------------------------------------

@pytest.mark.parametrize("facts, expected", [
    ({"can_text": True, "can_email": True}, ("sms",)),  # texts are read soonest
    ({"can_text": False, "can_email": True}, ("email",)),
    ({"can_text": True, "can_email": False}, ("sms",)),
    ({"can_text": False, "can_email": False}, ()),
    ({"can_text": True, "can_email": True, "requested": ["sms", "email"]}, ("sms", "email")),
    ({"can_text": True, "can_email": True, "requested": ["email"]}, ("email",)),
    ({"can_text": True, "can_email": True, "clinic_both": True}, ("sms", "email")),
    ({"can_text": True, "can_email": True, "clinic_both": True, "requested": ["sms"]}, ("sms",)),
    ({"can_text": True, "can_email": True, "choice": "both"}, ("sms", "email")),
    # The client's own choice comes first, over the caller's and the clinic's.
    ({"can_text": True, "can_email": True, "choice": "email", "requested": ["sms", "email"],
      "clinic_both": True}, ("email",)),
    ({"can_text": True, "can_email": True, "choice": "sms", "clinic_both": True}, ("sms",)),
    ({"can_text": True, "can_email": True, "choice": "both", "requested": ["sms"]},
     ("sms", "email")),
    # Both chosen but one cannot reach the client: the other alone.
    ({"can_text": False, "can_email": True, "choice": "both"}, ("email",)),
    # Nothing chosen can reach the client: the other channel (a STOP still gets aftercare).
    ({"can_text": False, "can_email": True, "choice": "sms"}, ("email",)),
    ({"can_text": False, "can_email": True, "requested": ["sms"]}, ("email",)),
    ({"can_text": True, "can_email": False, "choice": "email"}, ("sms",)),
])
def test_which_channels_a_client_gets(facts, expected):
    assert channels_for(**facts) == expected


# --- at enrolment ------------------------------------------------------------------------------

@pytest.mark.parametrize("client_fields, overrides, expected", [
    ({}, {}, ["sms"]),  # phone + consent + email: texts only
    ({"sms_consent": False}, {}, ["email"]),
    ({"phone": None, "sms_consent": False}, {}, ["email"]),
    ({"email": None}, {}, ["sms"]),
    ({}, {"channels": ["sms", "email"]}, ["sms", "email"]),
    ({}, {"channels": ["email"]}, ["email"]),
])
def test_enrolment_plans_each_message_once_unless_both_are_asked_for(
        client, clinic, session, client_fields, overrides, expected):
    visit = enrol(client, clinic[1], person=WITH_EMAIL | client_fields, **overrides)
    assert visit["channels"] == expected
    planned = sorted((m.kind, m.channel) for m in messages(session))
    assert planned == sorted((kind, channel) for kind in PLAN for channel in expected)
    for m in messages(session):
        assert m.recipient == {"sms": PHONE, "email": EMAIL}[m.channel]


def test_the_clinic_can_send_every_message_both_ways(client, clinic, session):
    set_up(session, Clinic, clinic[0].id, both_channels=True)
    enrol(client, clinic[1], person=WITH_EMAIL)
    assert Counter(m.channel for m in messages(session)) == {"sms": 6, "email": 6}


def test_a_client_who_chose_both_gets_both_and_one_who_chose_email_gets_email(
        client, clinic, session):
    first = enrol(client, clinic[1], person=WITH_EMAIL, external_id="v1")
    set_up(session, Client, first["client_id"], channel_choice="both")
    second = enrol(client, clinic[1], NOW + timedelta(seconds=1),
                   person=WITH_EMAIL, external_id="v2")
    assert second["channels"] == ["sms", "email"]
    assert Counter(m.channel for m in messages(session, visit_id=second["id"])) == {"sms": 6, "email": 6}

    set_up(session, Client, first["client_id"], channel_choice="email")
    third = enrol(client, clinic[1], NOW + timedelta(seconds=2),
                  person=WITH_EMAIL, external_id="v3")
    assert {m.channel for m in messages(session, visit_id=third["id"])} == {"email"}


def test_a_known_client_who_opted_out_of_texts_is_enrolled_by_email(client, clinic, session):
    first = enrol(client, clinic[1], person=WITH_EMAIL, external_id="v1")
    set_up(session, Client, first["client_id"], sms_opted_out_at=NOW)
    second = enrol(client, clinic[1], NOW + timedelta(seconds=1),
                   person=WITH_EMAIL, external_id="v2")
    assert second["channels"] == ["email"]
    assert {m["channel"] for m in second["messages"]} == {"email"}


def test_the_owner_sets_both_channels_on_the_settings_page(client, clinic, session):
    here = clinic[0]
    make_staff(session, here, "owner@example.com")
    log_in(client, "owner@example.com")
    page = client.get("/settings")
    assert 'name="both_channels"' in page.get_data(as_text=True)
    form = {"csrf_token": csrf_token(page), "time_zone": here.time_zone, "quiet_start": "21:00",
            "quiet_end": "08:00", "on_call_phones": "", "on_call_emails": "",
            "maintenance_weeks": "3", "weekly_visits": "3", "renotify_minutes": "30",
            "renotify_max": "3", "hydration_after": "2", "heat_after": "6", "checkin_after": "24",
            "followup_after": "72", "reminder_before": "24", "idle_timeout_minutes": "30",
            "both_channels": "on", "section": "plan",
            **{f"kind_{kind}": "on" for kind in PLAN}}
    assert client.post("/settings", data=form).status_code == 302
    session.expire_all()
    assert session.get(Clinic, here.id).both_channels is True
    del form["both_channels"]
    client.post("/settings", data=form | {"csrf_token": csrf_token(client.get("/settings"))})
    session.expire_all()
    assert session.get(Clinic, here.id).both_channels is False


# --- falling back to email ---------------------------------------------------------------------

@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_after_a_permanent_sms_failure_every_message_goes_once_by_email(
        client, clinic, session, providers, dispatcher):
    twilio, smtp = providers
    enrol(client, clinic[1], person=WITH_EMAIL)
    twilio.fail_next(100, 400, code=21211, to=PHONE)  # not a mobile number, every time
    for hours in (0, 2, 6, 24, 72, 24 * 7):
        with at(NOW + timedelta(hours=hours, minutes=1)):
            dispatcher.drain()
    assert twilio.messages == []
    assert {(m.kind, m.status, m.error_code) for m in messages(session, channel="sms")} == {
        (kind, "failed", "21211") for kind in PLAN}
    emails = messages(session, channel="email")
    assert [(m.kind, m.status) for m in emails] == [(kind, "sent") for kind in PLAN]
    assert len(smtp.wait_for(len(PLAN))) == len(PLAN)
    assert sent_per_kind(session) == dict.fromkeys(PLAN, 1)


def test_a_permanent_failure_of_a_visit_sent_both_ways_adds_no_second_email(
        client, clinic, session, providers, dispatcher):
    twilio, smtp = providers
    enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms", "email"])
    twilio.fail_next(1, 400, code=21211, to=PHONE)
    with at(NOW + timedelta(minutes=1)):
        dispatcher.drain()
    assert [(m.channel, m.status) for m in messages(session, kind="window_start")] == [
        ("sms", "failed"), ("email", "sent")]
    assert len(smtp.wait_for(1)) == 1


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_stop_that_raced_the_claim_sends_the_message_by_email_instead(
        client, clinic, session, providers, dispatcher, monkeypatch):
    twilio, smtp = providers
    visit = enrol(client, clinic[1], person=WITH_EMAIL)
    real_claim = outbox.claim_due

    def claim_then_client_says_stop(conn, *args):
        ids = real_claim(conn, *args)
        conn.execute(update(Client.__table__).values(sms_opted_out_at=NOW))
        return ids

    monkeypatch.setattr(outbox, "claim_due", claim_then_client_says_stop)
    with at(NOW + timedelta(minutes=1)):
        dispatcher.drain()
    assert twilio.messages == []
    [sms, email] = messages(session, kind="window_start")
    assert (sms.channel, sms.status, sms.error_code) == ("sms", "cancelled", "opted_out")
    assert (email.channel, email.status, email.visit_id) == ("email", "sent", visit["id"])
    assert [e.rcpt_tos for e in smtp.wait_for(1)] == [[EMAIL]]


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_an_opt_out_moves_what_is_still_to_come_to_email_and_an_opt_in_moves_it_back(
        app, client, clinic, session, providers, dispatcher):
    twilio, smtp = providers
    visit = enrol(client, clinic[1], person=WITH_EMAIL)
    with at(NOW + timedelta(minutes=1)):
        dispatcher.drain()  # the first text went
    stop = NOW + timedelta(hours=1)
    text(client, "STOP", stop)  # through the signed webhook, as Twilio posts it

    later = [k for k in PLAN if k != "window_start"]
    emails = messages(session, channel="email")
    assert [(m.kind, m.status) for m in emails] == [(k, "pending") for k in later]
    texts = {m.kind: m for m in messages(session, channel="sms")}
    for m in emails:  # same moment, visit and key scheme as planned
        assert m.due_at == texts[m.kind].due_at and m.visit_id == visit["id"]
        assert m.dedupe_key == f"visit:{visit['id']}:{m.kind}:email"
    assert not any(m.kind == "window_start" for m in emails)  # it went by text already
    for hours in (2, 6):
        with at(NOW + timedelta(hours=hours, minutes=1)):
            dispatcher.drain()

    # Texting START the next morning: what is still ahead goes back to texts.
    text(client, "START", NOW + timedelta(hours=20))
    statuses = {(m.kind, m.channel): (m.status, m.error_code) for m in messages(session)}
    for kind in ("checkin", "followup", "rebook_nudge"):
        assert statuses[kind, "sms"] == ("pending", None)
        assert statuses[kind, "email"] == ("cancelled", "channel_changed")

    for hours in (24, 72, 24 * 7):
        with at(NOW + timedelta(hours=hours, minutes=1)):
            dispatcher.drain()
    # hydration and heat went by email while texts were off; the rest by text; nothing twice.
    plan_sent = Counter(m.kind for m in messages(session, status="sent") if m.visit_id)
    assert plan_sent == dict.fromkeys(PLAN, 1)
    assert [m.kind for m in messages(session, channel="email", status="sent")] == ["hydration", "heat"]
    assert len(smtp.wait_for(2)) == 2
    # 4 plan texts, and the two confirmations (STOP, START)
    assert len(twilio.messages) == 6


def test_what_fell_due_while_the_client_was_opted_out_is_not_sent_later(
        app, client, clinic, session):
    visit = enrol(client, clinic[1], person=WITH_EMAIL)
    stop = NOW + timedelta(hours=1)
    # The page's "stop everything": every pending message cancelled, then re-decided.
    session.execute(update(Message).where(Message.status == "pending")
                    .values(status="cancelled", error_code="opted_out"))
    session.commit()
    replan(app, visit["client_id"], stop, sms_opted_out_at=stop, email_opted_out_at=stop)
    assert [m for m in messages(session) if m.channel == "email"] == []

    back = NOW + timedelta(hours=3)
    replan(app, visit["client_id"], back, sms_opted_out_at=None)
    statuses = {m.kind: (m.status, m.error_code) for m in messages(session)}
    assert statuses["hydration"] == ("cancelled", "opted_out")  # due at 2 h: stale now
    assert statuses["heat"] == ("pending", None)  # due at 6 h: still ahead
    assert statuses["checkin"] == ("pending", None)
    assert [m for m in messages(session) if m.channel == "email"] == []


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_message_waiting_on_one_channel_goes_at_once_on_the_other(app, client, clinic, session):
    visit = enrol(client, clinic[1], person=WITH_EMAIL)
    replan(app, visit["client_id"], NOW + timedelta(minutes=1), channel_choice="email")
    # The worker was away: the hydration email (2 h) is still pending at 3 h when the client
    # switches back to texts; the text takes over at once, not never.
    switch = NOW + timedelta(hours=3)
    replan(app, visit["client_id"], switch, channel_choice="sms")
    by = {(m.kind, m.channel): m for m in messages(session)}
    assert (by["hydration", "email"].status, by["hydration", "email"].error_code) == (
        "cancelled", "channel_changed")
    assert (by["hydration", "sms"].status, by["hydration", "sms"].next_attempt_at) == (
        "pending", switch)
    assert by["heat", "sms"].next_attempt_at == by["heat", "sms"].due_at  # 6 h, as planned


def test_choosing_both_adds_the_other_channel_and_never_twice(app, client, clinic, session):
    visit = enrol(client, clinic[1], person=WITH_EMAIL)
    for _ in range(2):
        replan(app, visit["client_id"], NOW + timedelta(minutes=5), channel_choice="both")
    assert Counter(m.channel for m in messages(session, status="pending")) == {"sms": 6, "email": 6}
    assert len(messages(session)) == 12
    # Opting out of email keeps the texts only.
    replan(app, visit["client_id"], NOW + timedelta(minutes=6),
           email_opted_out_at=NOW + timedelta(minutes=6))
    assert {m.channel for m in messages(session, status="pending")} == {"sms"}
    assert {m.error_code for m in messages(session, channel="email")} == {"channel_changed"}
    assert visit["channels"] == ["sms"]


def test_nothing_reachable_cancels_what_is_pending(app, client, clinic, session):
    visit = enrol(client, clinic[1], person=WITH_EMAIL)
    moment = NOW + timedelta(minutes=5)
    replan(app, visit["client_id"], moment, sms_opted_out_at=moment, email_opted_out_at=moment)
    assert {m.status for m in messages(session)} == {"cancelled"}
    assert [m for m in messages(session) if m.channel == "email"] == []


def test_a_message_that_failed_on_the_wanted_channel_stays_on_the_other(
        app, client, clinic, session):
    visit = enrol(client, clinic[1], person=WITH_EMAIL)
    # The check-in text failed for good; its email fallback waits to be sent.
    [text] = messages(session, kind="checkin")
    set_up(session, Message, text.id, status="failed", error_code="21211")
    session.add(Message(clinic_id=clinic[0].id, client_id=visit["client_id"],
                        visit_id=visit["id"], kind="checkin", channel="email", recipient=EMAIL,
                        due_at=NOW, next_attempt_at=NOW,
                        dedupe_key=f"visit:{visit['id']}:checkin:email"))
    session.commit()
    replan(app, visit["client_id"], NOW + timedelta(minutes=1), channel_choice="sms")
    assert {m.channel: m.status for m in messages(session, kind="checkin")} == {
        "sms": "failed", "email": "pending"}
