"""Conditions decided when a planned message is about to go out, not when it was planned.

A message can sit in the outbox for days; by then the client may have answered, booked, or the
advice may be stale. Pure: the dispatcher gathers the facts and obeys the answer.
"""

from dataclasses import dataclass
from datetime import datetime

from service.domain import careplan


@dataclass(frozen=True)
class SendTimeFacts:
    kind: str
    now: datetime
    visit_at: datetime | None = None
    last_answer: str | None = None  # the latest check-in since the visit: better | same | worse
    appointment_at: datetime | None = None  # what a reminder reminds of
    appointment_cancelled: bool = False
    booked_since_visit: bool = False  # rebook nudges are moot once the client has booked


def skip_reason(facts: SendTimeFacts) -> str | None:
    """Why this message should not be sent now, or None to send it."""
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
