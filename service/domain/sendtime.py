"""Conditions decided when a message is about to go out, not when it was planned.

A message can sit in the outbox for days; by then the client may have stopped texts, answered,
booked, or the advice may be stale. Pure: the dispatcher gathers the facts and obeys the answer.
"""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.domain import careplan
from service.domain.messages import CancelReason, MessageKind, MessageStatus


@dataclass(frozen=True)
class SendTimeFacts:
    kind: str
    now: datetime
    visit_at: datetime | None = None
    last_answer: str | None = None  # the latest check-in since the visit: better | same | worse
    appointment_at: datetime | None = None  # what a reminder reminds of
    appointment_cancelled: bool = False
    booked_since_visit: bool = False  # rebook nudges are moot once the client has booked
    channel: str = "sms"
    has_client: bool = False  # the message is about a client (a staff alert too)
    sms_consent: bool = False
    sms_opted_out: bool = False
    email_opted_out: bool = False
    daily_send_cap: int | None = None  # the clinic's routine texts a day; None: no cap
    texted_today: int = 0  # the clinic's routine texts sent today, this batch's so far too


# The daily send cap limits the plan's texts (SMS pumping is what it guards against); answers
# to a client's text, staff alerts and emails are never held by it.
CAPPED_KINDS, CAPPED_CHANNEL = careplan.PLAN_KINDS, "sms"
DAILY_CAP = "daily_cap"


def counts_toward_cap(kind: str, channel: str) -> bool:
    return kind in CAPPED_KINDS and channel == CAPPED_CHANNEL


def day_started(now: datetime, time_zone: str) -> datetime:
    """The last midnight in the clinic's zone: the cap counts the texts sent since."""
    local = now.astimezone(ZoneInfo(time_zone))
    return datetime.combine(local.date(), time(0), local.tzinfo)


def next_day(now: datetime, time_zone: str) -> datetime:
    """The next midnight in the clinic's zone: when texts held by the cap may go again."""
    local = now.astimezone(ZoneInfo(time_zone))
    return datetime.combine(local.date() + timedelta(days=1), time(0), local.tzinfo)


def hold_reason(facts: SendTimeFacts) -> str | None:
    """Why this message must not go now, or None to send it: the client's opt-outs and consent
    (checked at send time, as a STOP can arrive after the claim), then skip_reason."""
    if facts.has_client and facts.kind != MessageKind.STAFF_ALERT:
        if facts.channel == "email" and facts.email_opted_out:
            return CancelReason.OPTED_OUT
        if facts.channel == "sms":
            # The confirmation of a STOP is the one text an opted-out number still gets.
            if facts.sms_opted_out and facts.kind != MessageKind.OPT_OUT_CONFIRMATION:
                return CancelReason.OPTED_OUT
            # Answering a text the client sent needs no prior consent; the plan does.
            if not facts.sms_consent and facts.kind in careplan.PLAN_KINDS:
                return CancelReason.NO_CONSENT
    reason = skip_reason(facts)
    if reason is None and over_cap(facts):
        return DAILY_CAP
    return reason


def over_cap(facts: SendTimeFacts) -> bool:
    """A plan text of a clinic that has sent its daily cap of them today waits for tomorrow."""
    return (facts.daily_send_cap is not None and counts_toward_cap(facts.kind, facts.channel)
            and facts.texted_today >= facts.daily_send_cap)


def held_status(reason: str) -> MessageStatus:
    """A message held for the client's choices is cancelled (an opt-in may reopen it); one over
    the clinic's daily cap stays pending (for its next day); one whose moment has passed is
    skipped."""
    if reason in (CancelReason.OPTED_OUT, CancelReason.NO_CONSENT):
        return MessageStatus.CANCELLED
    if reason == DAILY_CAP:
        return MessageStatus.PENDING
    return MessageStatus.SKIPPED


def skip_reason(facts: SendTimeFacts) -> str | None:
    """Why this planned message is moot now, or None to send it."""
    if facts.kind in careplan.WINDOW_ADVICE and facts.visit_at:
        if careplan.window_over(facts.visit_at, facts.now):
            return "window_over"
    if facts.kind == careplan.FOLLOWUP and facts.last_answer == "better":
        return "client_better"
    if facts.kind == careplan.APPOINTMENT_REMINDER:
        if facts.appointment_cancelled:
            return "appointment_cancelled"
        if facts.appointment_at is None or facts.appointment_at <= facts.now:
            return "appointment_passed"
    if facts.kind == careplan.REBOOK_NUDGE and facts.booked_since_visit:
        return "already_booked"
    return None
