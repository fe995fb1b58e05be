"""End to end: enrol through the API, let time pass, run the dispatch job, and look at what the
fake Twilio server and the real SMTP server on 127.0.0.1 received."""

import base64
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from icalendar import Calendar
from sqlmodel import select

from service.config import Config
from service.messaging import outbox
from service.messaging.dispatch import Dispatcher
from service.messaging.dispatch import dispatcher as dispatcher_module
from service.models import Appointment, CheckIn, Client
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, BOTH_BACKENDS, FROM_NUMBER, PUBLIC_URL
from tests.helpers import EMAIL, NOW, PHONE, at, enrol, messages

WITH_EMAIL = {"email": EMAIL}  # the other channel: fallback, both, the reminder's .ics


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_enrolment_reaches_twilio_and_smtp_at_the_planned_times(
        client, clinic, session, providers, dispatcher):
    twilio, smtp = providers
    starts = NOW + timedelta(days=3)
    visit = enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms", "email"],
                  next_appointment={"starts_at": starts.isoformat()})

    with at(NOW + timedelta(minutes=1)):
        dispatcher.drain()
    [sms] = twilio.messages
    assert sms.to == PHONE and sms.from_ == FROM_NUMBER
    assert "until Thu 10:00 AM" in sms.body and "STOP" in sms.body
    assert "lighter pressure" in sms.body  # first visit
    expected_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert sms.authorization == f"Basic {expected_auth}"
    [window_sms] = messages(session, kind="window_start", channel="sms")
    assert sms.form["StatusCallback"] == f"{PUBLIC_URL}/webhooks/twilio/status?m={window_sms.id}"
    assert (window_sms.status, window_sms.provider_id, window_sms.attempts) == ("sent", sms.sid, 1)
    assert window_sms.body == sms.body

    [email] = smtp.wait_for(1)
    assert email.rcpt_tos == ["ana@example.com"]
    message: EmailMessage = email.message
    assert message["From"] == "Clinic <care@clinic.example>"
    assert "Thu 10:00 AM" in message.get_body(("plain",)).get_content()
    assert "Thu 10:00 AM" in message.get_body(("html",)).get_content()

    with at(NOW + timedelta(hours=2, minutes=1)):  # the hydration tip, nothing else
        dispatcher.drain()
    assert [m.body for m in twilio.messages][1:] == [messages(session, kind="hydration",
                                                          channel="sms")[0].body]
    assert len(smtp.wait_for(2)) == 2

    with at(starts - timedelta(hours=24) + timedelta(minutes=1)):  # everything up to here
        dispatcher.drain()
    sent_kinds = [m.kind for m in messages(session, channel="email", status="sent")]
    assert sent_kinds[-1] == "appointment_reminder"
    emails = smtp.wait_for(len(sent_kinds))
    [ics] = [part for email in emails for part in email.message.iter_attachments()
             if part.get_content_type() == "text/calendar"]  # only the reminder carries one
    event = Calendar.from_ical(ics.get_content()).walk("VEVENT")[0]
    assert event.decoded("dtstart") == starts

    sent_before = (len(twilio.messages), len(smtp.messages))
    with at(starts - timedelta(hours=23)):
        assert dispatcher.drain() == 0  # nothing is sent twice
    assert (len(twilio.messages), len(smtp.messages)) == sent_before
    assert visit["id"] == window_sms.visit_id


def test_messaging_service_replaces_the_from_number(app, settings, providers, client, clinic):
    config = Config({**settings, "TWILIO_FROM_NUMBER": None,
                     "TWILIO_MESSAGING_SERVICE_SID": "MG" + "2" * 32})
    enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms"])
    with at(NOW + timedelta(minutes=1)):
        Dispatcher(config, app.extensions["aftercare.engine"], "w1").drain()
    [sms] = providers[0].messages
    assert sms.messaging_service_sid == "MG" + "2" * 32 and sms.from_ is None


def test_quiet_hours_hold_messages_until_morning(client, clinic, session, providers, dispatcher):
    evening = datetime(2026, 6, 10, 22, 30, tzinfo=UTC)  # 18:30 in New York
    enrol(client, clinic[1], evening, person=WITH_EMAIL, channels=["sms"])
    with at(evening + timedelta(hours=6, minutes=1)):  # 00:31 local: the heat tip is held
        dispatcher.drain()
    assert [m.kind for m in messages(session, status="sent")] == ["window_start", "hydration"]
    [heat] = messages(session, kind="heat")
    assert heat.due_at == datetime(2026, 6, 11, 12, 0, tzinfo=UTC)  # 08:00 local
    with at(datetime(2026, 6, 11, 12, 0, 5, tzinfo=UTC)):
        dispatcher.drain()
    assert messages(session, kind="heat")[0].status == "sent"


@pytest.mark.parametrize("fault", [
    {"status": 500}, {"status": 503}, {"status": 429, "retry_after": 120},
])
def test_transient_failures_retry_with_backoff_then_send_once(
        client, clinic, session, providers, dispatcher, fault):
    twilio, _ = providers
    enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms"])
    twilio.fail_next(2, **fault)
    moment = NOW + timedelta(minutes=1)
    for attempt in (1, 2):
        with at(moment):
            dispatcher.drain()
        [row] = messages(session, kind="window_start")
        assert (row.status, row.attempts) == ("pending", attempt)
        assert row.error_code == f"http-{fault['status']}"
        wait = row.next_attempt_at - moment
        assert wait >= timedelta(seconds=fault.get("retry_after", 15 * attempt))
        with at(moment + wait - timedelta(seconds=1)):
            assert dispatcher.drain() == 0  # not before its time
        moment += wait
    with at(moment):
        dispatcher.drain()
    assert len(twilio.messages) == 1
    [row] = messages(session, kind="window_start")
    assert (row.status, row.attempts, row.provider_id) == ("sent", 3, twilio.messages[0].sid)


def test_a_timeout_is_retried(client, clinic, session, settings, providers, dispatcher):
    twilio, _ = providers
    enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms"])
    # A slow failure: the client gives up after SEND_TIMEOUT_SECONDS and Twilio kept nothing.
    twilio.delay_next(1, settings["SEND_TIMEOUT_SECONDS"] + 1)
    twilio.fail_next(1, 500)
    with at(NOW + timedelta(minutes=1)):
        dispatcher.drain()
    [row] = messages(session, kind="window_start")
    assert (row.status, row.error_code) == ("pending", "network")
    with at(row.next_attempt_at):
        dispatcher.drain()
    assert [m.to for m in twilio.messages] == [PHONE]


def test_a_permanent_error_fails_the_sms_and_falls_back_to_email(
        client, clinic, session, providers, dispatcher):
    twilio, smtp = providers
    enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms"])
    twilio.fail_next(1, 400, code=21211)  # invalid To number
    with at(NOW + timedelta(minutes=1)):
        dispatcher.drain()
    assert twilio.messages == []
    [sms] = messages(session, kind="window_start", channel="sms")
    assert (sms.status, sms.error_code, sms.attempts) == ("failed", "21211", 1)
    [email] = messages(session, kind="window_start", channel="email")
    assert email.status == "sent" and email.recipient == "ana@example.com"
    assert smtp.wait_for(1)[0].rcpt_tos == ["ana@example.com"]


def test_twilio_unsubscribed_error_opts_the_client_out(
        client, clinic, session, providers, dispatcher):
    twilio, _ = providers
    enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms"])
    twilio.fail_next(1, 400, code=21610)
    with at(NOW + timedelta(minutes=1)):
        dispatcher.drain()
    assert session.exec(select(Client)).one().sms_opted_out_at is not None
    with at(NOW + timedelta(hours=3)):
        dispatcher.drain()
    assert twilio.messages == []
    assert messages(session, kind="hydration", channel="sms")[0].error_code == "opted_out"


def test_opt_out_after_the_claim_is_still_honoured(
        client, clinic, session, providers, dispatcher, monkeypatch):
    twilio, _ = providers
    enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms"])
    real_claim = outbox.claim_due

    def claim_then_client_says_stop(conn, *args):
        ids = real_claim(conn, *args)
        conn.execute(Client.__table__.update().values(sms_opted_out_at=NOW))
        return ids

    monkeypatch.setattr(outbox, "claim_due", claim_then_client_says_stop)
    with at(NOW + timedelta(minutes=1)):
        dispatcher.drain()
    assert twilio.messages == []
    assert messages(session, kind="window_start")[0].status == "cancelled"


def test_follow_up_only_when_not_better(client, clinic, session, providers, dispatcher):
    visit = enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms"])
    session.add(CheckIn(client_id=visit["client_id"], visit_id=visit["id"], answer="better",
                        source="sms", created_at=NOW + timedelta(hours=25)))
    session.commit()
    with at(NOW + timedelta(hours=72, minutes=1)):
        dispatcher.drain()
    [followup] = messages(session, kind="followup")
    assert (followup.status, followup.error_code) == ("skipped", "client_better")
    [checkin] = messages(session, kind="checkin")
    assert checkin.status == "sent"


def test_rebook_nudge_skipped_once_the_client_booked(client, clinic, session, providers,
                                                      dispatcher):
    visit = enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms"])
    session.add(Appointment(clinic_id=clinic[0].id, client_id=visit["client_id"],
                            starts_at=NOW + timedelta(days=10), created_at=NOW + timedelta(days=2)))
    session.commit()
    with at(NOW + timedelta(days=7, minutes=1)):
        dispatcher.drain()
    assert messages(session, kind="rebook_nudge")[0].error_code == "already_booked"
    assert {m.status for m in messages(session)} == {"sent", "skipped"}


def test_stale_window_advice_is_skipped_after_an_outage(client, clinic, session, providers,
                                                        dispatcher):
    enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms"])
    with at(NOW + timedelta(hours=30)):  # the worker was down for a day
        dispatcher.drain()
    statuses = {m.kind: (m.status, m.error_code) for m in messages(session)}
    assert statuses["hydration"] == ("skipped", "window_over")
    assert statuses["checkin"] == ("sent", None)


def test_the_reaper_returns_claims_of_a_dead_worker(app, client, clinic, session, dispatcher):
    enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms"])
    engine = app.extensions["aftercare.engine"]
    with engine.begin() as conn:
        [claimed] = outbox.claim_due(conn, "dead-worker", NOW + timedelta(minutes=1), 1)
    with at(NOW + timedelta(minutes=3)):
        assert dispatcher.reap() == 0  # still within the claim timeout
    with at(NOW + timedelta(minutes=7)):
        assert dispatcher.reap() == 1
    [row] = messages(session, id=claimed)
    assert (row.status, row.claimed_by) == ("pending", None)


def test_a_clinic_s_own_wording_is_what_goes_out(client, clinic, session, providers, dispatcher):
    row = session.get(type(clinic[0]), clinic[0].id)
    row.plan_overrides = {"wording": {"en": {"window_start": "{clinic_name}: rest today, "
                                                             "{first_name}. STOP to end"}}}
    session.add(row)
    session.commit()
    enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms"])
    with at(NOW + timedelta(minutes=1)):
        dispatcher.drain()
    assert [m.body for m in providers[0].messages] == [
        "Back Walk Clinic: rest today, Ana. STOP to end"]


def test_a_failure_in_a_senders_bookkeeping_stops_the_drain_without_losing_rows(
        client, clinic, session, providers, dispatcher, monkeypatch):
    """The senders are long-lived: one dying mid-batch must end the drain with its error (not
    leave it waiting for a batch that never completes), and the claimed rows stay claimed for
    the reaper to give back."""
    enrol(client, clinic[1], person=WITH_EMAIL, channels=["sms", "email"])

    def broken(*args):
        raise RuntimeError("bookkeeping bug")

    monkeypatch.setattr(dispatcher_module, "send_outcome", broken)
    with at(NOW + timedelta(minutes=1)), pytest.raises(RuntimeError, match="bookkeeping bug"):
        dispatcher.drain()
    assert {m.status for m in messages(session, kind="window_start")} == {"claimed"}
