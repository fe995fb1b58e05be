"""A check-in, from an SMS reply or the client's page: recorded against the latest visit and put
through the escalation rules, the same way whatever the channel."""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from service.care.escalations import escalate
from service.care.scope import theirs
from service.domain import escalation as rules
from service.models import CheckIn, Client, Clinic, Visit


@dataclass(frozen=True)
class CheckInResult:
    assessment: rules.Assessment
    # When on-call will see it, if not now: a concern alert waits for the clinic's quiet hours to
    # end, and the client must be told so rather than "we have let the team know".
    team_sees_at: datetime | None = None


def record_check_in(session: Session, clinic: Clinic, client: Client, *, answer: str | None,
                    pain: int | None, red_flags: tuple[str, ...], source: str, now: datetime,
                    inbound_id: int | None = None, reply_text: str | None = None,
                    form_id: str | None = None) -> CheckInResult:
    checkin = CheckIn(client_id=client.id, answer=answer, pain=pain, red_flags=list(red_flags),
                      source=source, inbound_message_id=inbound_id, form_id=form_id, created_at=now)
    if answer or pain is not None or red_flags:
        visit = session.exec(select(Visit).where(theirs(Visit, client))
                             .order_by(Visit.occurred_at.desc())).first()
        checkin.visit_id = visit and visit.id
        session.add(checkin)
    assessment = assess(checkin, client)
    row = escalate(session, clinic, client, assessment, now, reply_text=reply_text)
    later = row is not None and row.last_notified_at is not None and row.last_notified_at > now
    return CheckInResult(assessment, row.last_notified_at if later else None)


def assess(checkin: CheckIn, client: Client) -> rules.Assessment:
    """A check-in graded by the escalation rules: as it is recorded, and again when the client's
    page shows what came of it."""
    return rules.assess(checkin.answer, checkin.pain, tuple(checkin.red_flags), client.baseline_pain)
