"""The suggested maintenance interval for a client, from their check-ins (rules in
domain/maintenance.py); it sets the rebooking nudge only where the clinic switched it on."""

from dataclasses import replace

from sqlmodel import Session, select

from service.care.scope import theirs
from service.domain.careplan import REBOOK_NUDGE, PlanSettings
from service.domain.maintenance import CheckInFact, Suggestion, suggest_interval
from service.models import CheckIn, Client, Clinic, Escalation


def suggestion_for(session: Session, client: Client) -> Suggestion:
    clinic = session.get(Clinic, client.clinic_id)
    checkins = session.exec(select(CheckIn).where(theirs(CheckIn, client))
                            .order_by(CheckIn.created_at)).all()
    escalated = session.exec(select(Escalation.id).where(theirs(Escalation, client),
                                                         Escalation.status == "open")).first()
    return suggest_interval(
        [CheckInFact(at=c.created_at, answer=c.answer, pain=c.pain) for c in checkins],
        current_weeks=clinic.maintenance_weeks, open_escalation=escalated is not None,
    )


def plan_settings_for(session: Session, clinic: Clinic, client: Client) -> PlanSettings:
    """The clinic's plan, with the maintenance interval suggested by the client's check-ins
    when the clinic asked for it (an open escalation: no nudge until staff decide)."""
    settings = clinic.plan_settings()
    if not clinic.use_suggested_interval:
        return settings
    weeks = suggestion_for(session, client).weeks
    if weeks is None:
        return replace(settings, enabled_kinds=settings.enabled_kinds - {REBOOK_NUDGE})
    return replace(settings, maintenance_weeks=weeks)
