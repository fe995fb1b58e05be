"""Conditions decided when a message is about to go out, not when it was planned.

A message can sit in the outbox for days; by then the client may have stopped texts, answered,
booked, or the advice may be stale. Pure: the dispatcher gathers the facts and obeys the answer.
"""

from dataclasses import dataclass
from datetime import datetime

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
    return skip_reason(facts)


def held_status(reason: str) -> MessageStatus:
    """A message held for the client's choices is cancelled (an opt-in may reopen it); one whose
    moment has passed is skipped."""
    if reason in (CancelReason.OPTED_OUT, CancelReason.NO_CONSENT):
        return MessageStatus.CANCELLED
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
