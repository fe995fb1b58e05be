"""The send-time rules (domain/sendtime.py) as a table: the facts about one message when it is
about to go out -> why it is held (or None: it goes). One row per rule, and its exception."""

from datetime import UTC, datetime, timedelta

import pytest

from service.domain.messages import MessageStatus
from service.domain.sendtime import SendTimeFacts, day_started, held_status, hold_reason, next_day

NOW = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)
# A client who agreed to texts and stopped nothing.
CLIENT = {"has_client": True, "sms_consent": True}
CAP = {"daily_send_cap": 3}

TABLE = [
    # the client's choices: opt-outs per channel, consent for the plan's texts
    ("email stopped", dict(kind="checkin", channel="email", **CLIENT, email_opted_out=True),
     "opted_out"),
    ("texts stopped", dict(kind="checkin", **CLIENT, sms_opted_out=True), "opted_out"),
    ("texts stopped, by email", dict(kind="checkin", channel="email", **CLIENT,
                                     sms_opted_out=True), None),
    ("the STOP's confirmation", dict(kind="opt_out_confirmation", **CLIENT, sms_opted_out=True),
     None),
    ("a plan text without consent", dict(kind="heat", has_client=True), "no_consent"),
    ("an answer without consent", dict(kind="help", has_client=True), None),
    ("an alert about a client who stopped texts",
     dict(kind="staff_alert", has_client=True, sms_opted_out=True, email_opted_out=True), None),
    ("a text to no known client", dict(kind="help"), None),
    # the plan's conditions
    ("window advice after the window", dict(kind="hydration", **CLIENT,
                                            visit_at=NOW - timedelta(hours=24)), "window_over"),
    ("window advice within the window", dict(kind="hydration", **CLIENT,
                                             visit_at=NOW - timedelta(hours=23)), None),
    ("a follow-up after 'better'", dict(kind="followup", **CLIENT, last_answer="better"),
     "client_better"),
    ("a follow-up after 'same'", dict(kind="followup", **CLIENT, last_answer="same"), None),
    ("a follow-up with no answer", dict(kind="followup", **CLIENT), None),
    ("a reminder of a cancelled appointment",
     dict(kind="appointment_reminder", **CLIENT, appointment_at=NOW + timedelta(hours=24),
          appointment_cancelled=True), "appointment_cancelled"),
    ("a reminder of a past appointment",
     dict(kind="appointment_reminder", **CLIENT, appointment_at=NOW), "appointment_passed"),
    ("a reminder of no appointment", dict(kind="appointment_reminder", **CLIENT),
     "appointment_passed"),
    ("a reminder ahead", dict(kind="appointment_reminder", **CLIENT,
                              appointment_at=NOW + timedelta(hours=24)), None),
    ("a rebooking nudge after booking", dict(kind="rebook_nudge", **CLIENT,
                                             booked_since_visit=True), "already_booked"),
    ("a rebooking nudge, not booked", dict(kind="rebook_nudge", **CLIENT), None),
    # the clinic's daily send cap: the plan's texts only
    ("a plan text at the daily cap", dict(kind="checkin", **CLIENT, **CAP, texted_today=3),
     "daily_cap"),
    ("a plan text under the daily cap", dict(kind="checkin", **CLIENT, **CAP, texted_today=2),
     None),
    ("a plan text, no cap", dict(kind="checkin", **CLIENT, texted_today=10_000), None),
    ("a plan email at the daily cap", dict(kind="checkin", channel="email", **CLIENT, **CAP,
                                           texted_today=3), None),
    ("urgent advice at the daily cap", dict(kind="urgent_advice", **CLIENT, **CAP,
                                            texted_today=3), None),
    ("a staff alert at the daily cap", dict(kind="staff_alert", has_client=True, **CAP,
                                            texted_today=3), None),
    ("a moot plan text at the daily cap", dict(kind="followup", **CLIENT, last_answer="better",
                                               **CAP, texted_today=3), "client_better"),
]


@pytest.mark.parametrize("facts, reason", [pytest.param(facts, reason, id=name)
                                           for name, facts, reason in TABLE])
def test_hold_reason(facts, reason):
    assert hold_reason(SendTimeFacts(now=NOW, **facts)) == reason


@pytest.mark.parametrize("reason, status", [
    ("opted_out", MessageStatus.CANCELLED),  # an opt-in may reopen it
    ("no_consent", MessageStatus.CANCELLED),
    ("window_over", MessageStatus.SKIPPED),
    ("client_better", MessageStatus.SKIPPED),
    ("appointment_cancelled", MessageStatus.SKIPPED),
    ("appointment_passed", MessageStatus.SKIPPED),
    ("already_booked", MessageStatus.SKIPPED),
    ("daily_cap", MessageStatus.PENDING),  # again on the clinic's next day
])
def test_a_held_message_is_cancelled_for_the_clients_choices_else_skipped(reason, status):
    assert held_status(reason) == status


def test_the_daily_cap_s_day_is_the_clinic_s():
    late_evening = datetime(2026, 6, 11, 3, 30, tzinfo=UTC)  # 23:30 on June 10 in New York
    assert day_started(late_evening, "America/New_York") == datetime(2026, 6, 10, 4, 0, tzinfo=UTC)
    assert next_day(late_evening, "America/New_York") == datetime(2026, 6, 11, 4, 0, tzinfo=UTC)
    assert day_started(late_evening, "UTC") == datetime(2026, 6, 11, tzinfo=UTC)
