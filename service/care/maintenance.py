"""The suggested maintenance interval for a client, from their check-ins (rules in
domain/maintenance.py); it sets the rebooking nudge only where the clinic switched it on. A
contraindication waiting for review holds the nudge whatever the clinic chose."""

from dataclasses import replace

from sqlalchemy import bindparam
from sqlmodel import Session, select

from service.care.scope import theirs
from service.domain.careplan import REBOOK_NUDGE, PlanSettings
from service.domain.i18n import N_
from service.domain.maintenance import CheckInFact, Sentence, Suggestion, suggest_interval
from service.models import CheckIn, Client, Clinic, Escalation, ScreeningReview, Visit

# The client's visits, latest first, with their checklist and its review's status.
_SCREENINGS = (select(Visit.contraindications, ScreeningReview.status)
               .join(ScreeningReview, ScreeningReview.visit_id == Visit.id, isouter=True)
               .where(Visit.client_id == bindparam("client_id"))
               .order_by(Visit.occurred_at.desc(), Visit.id.desc()))
HELD = Suggestion.of(None, Sentence(
    N_("A contraindication: no rebooking nudge unless the owner approves it.")))


def rebooking_held(session: Session, client_id: int) -> bool:
    """Whether back walking waits: the client's latest screening (a visit not screened does not
    count) ticked a box and the owner has not approved going on. A later "none of these apply"
    lifts it."""
    for ticked, status in session.execute(_SCREENINGS, {"client_id": client_id}):
        if ticked is not None:
            return bool(ticked) and status != "approved"
    return False


def suggestion_for(session: Session, client: Client) -> Suggestion:
    if rebooking_held(session, client.id):
        return HELD
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
    when the clinic asked for it (an open escalation, or a contraindication held: no nudge until
    staff decide)."""
    settings = clinic.plan_settings()
    if not clinic.use_suggested_interval and not rebooking_held(session, client.id):
        return settings
    weeks = suggestion_for(session, client).weeks
    if weeks is None:
        return replace(settings, enabled_kinds=settings.enabled_kinds - {REBOOK_NUDGE})
    return replace(settings, maintenance_weeks=weeks)
