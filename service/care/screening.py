"""Contraindication reviews. A box ticked at enrolment opens one: the session's aftercare goes as
planned, but the rebooking nudge waits (care/maintenance.rebooking_held) until the owner approves
back walking going on. A clinician may close a review (reviewed, with a note: the nudge stays held);
a non-owner's reason to go on is a request the owner approves or declines. Pregnancy is never
approved, and on-call is paged at once, through an urgent escalation like any red flag.
The caller commits."""

from datetime import UTC, datetime

from sqlmodel import Session, func, select

from service.care import audit
from service.care.escalations import escalate
from service.care.maintenance import plan_settings_for
from service.care.scope import belongs
from service.domain import careplan
from service.domain.contraindications import NEVER_APPROVED, WAITING, approvable, names
from service.domain.escalation import URGENT, Assessment
from service.messaging import outbox
from service.models import Appointment, Client, Clinic, ScreeningReview, Visit


class NotWaiting(Exception):
    """The review was decided already, or (approval) it can never be approved."""


def open_review(session: Session, clinic: Clinic, client: Client, visit: Visit, now: datetime,
                actor: str) -> ScreeningReview:
    """For a visit whose checklist ticked a box, at enrolment."""
    review = ScreeningReview(clinic_id=clinic.id, client_id=client.id, visit_id=visit.id,
                             contraindications=list(visit.contraindications), created_at=now)
    session.add(review)
    session.flush()
    audit.record(session, "screening_review_opened", clinic_id=clinic.id, client_id=client.id,
                 actor=actor, review_id=review.id, contraindications=review.contraindications)
    if NEVER_APPROVED & set(review.contraindications):
        escalate(session, clinic, client, Assessment(URGENT, (
            f"screened at enrolment: {names(review.contraindications)}; no back walking",)), now)
    return review


def review_of(session: Session, visit: Visit) -> ScreeningReview | None:
    return session.exec(select(ScreeningReview).where(ScreeningReview.visit_id == visit.id,
                                                      belongs(ScreeningReview, visit.clinic_id))).first()


def waiting(session: Session, clinic_id: int) -> list[tuple[ScreeningReview, Client]]:
    """The clinic's reviews nobody has decided, oldest first."""
    return session.exec(select(ScreeningReview, Client)
                        .join(Client, ScreeningReview.client_id == Client.id)
                        .where(belongs(ScreeningReview, clinic_id),
                               ScreeningReview.status.in_(WAITING))
                        .order_by(ScreeningReview.created_at, ScreeningReview.id)).all()


def count_waiting(session: Session, clinic_id: int) -> int:
    return session.exec(select(func.count()).select_from(ScreeningReview).where(
        belongs(ScreeningReview, clinic_id), ScreeningReview.status.in_(WAITING))).one()


def request_override(session: Session, review: ScreeningReview, staff_id: int, reason: str,
                     now: datetime) -> None:
    """A non-owner's reason to go on with back walking: the owner decides."""
    _must_wait(review, approval=True)
    review.status, review.requested_by_id, review.request_reason = "override_requested", staff_id, reason
    _decided(session, review, "screening_override_requested", staff_id, None, now, reason=reason)


def approve(session: Session, review: ScreeningReview, staff_id: int, note: str | None,
            now: datetime) -> None:
    """The owner lets back walking go on: the visit's rebooking nudge is planned now, as
    enrolment would have (unless a later visit has its own plan)."""
    _must_wait(review, approval=True)
    review.status = "approved"
    _decided(session, review, "screening_approved", staff_id, note, now)
    session.flush()
    _plan_rebook_nudge(session, review, now)


def decline(session: Session, review: ScreeningReview, staff_id: int, note: str | None,
            now: datetime) -> None:
    """The owner refuses a request: the review is closed, the nudge stays held."""
    if review.status != "override_requested":
        raise NotWaiting("no request to decline")
    review.status = "closed"
    _decided(session, review, "screening_override_declined", staff_id, note, now)


def close(session: Session, review: ScreeningReview, staff_id: int, note: str | None,
          now: datetime) -> None:
    """Reviewed by a clinician: off the dashboard; back walking still waits for an approval."""
    _must_wait(review)
    review.status = "closed"
    _decided(session, review, "screening_review_closed", staff_id, note, now)


def _must_wait(review: ScreeningReview, approval: bool = False) -> None:
    if review.status not in WAITING:
        raise NotWaiting(f"already {review.status}")
    if approval and not approvable(review.contraindications):
        raise NotWaiting(f"{names(review.contraindications)} can never be approved")


def _decided(session: Session, review: ScreeningReview, action: str, staff_id: int,
             note: str | None, now: datetime, **detail) -> None:
    if action != "screening_override_requested":
        review.decided_by_id, review.decided_at, review.note = staff_id, now, note
    session.add(review)
    audit.record(session, action, clinic_id=review.clinic_id, client_id=review.client_id,
                 actor=f"staff:{staff_id}", review_id=review.id,
                 contraindications=review.contraindications, note=note, **detail)


def _plan_rebook_nudge(session: Session, review: ScreeningReview, now: datetime) -> None:
    visit = session.get(Visit, review.visit_id)
    latest = session.exec(select(Visit.id).where(Visit.client_id == review.client_id)
                          .order_by(Visit.occurred_at.desc(), Visit.id.desc())).first()
    if visit is None or visit.id != latest:
        return
    client, clinic = session.get(Client, review.client_id), session.get(Clinic, review.clinic_id)
    appointment = session.exec(select(Appointment.starts_at)
                               .where(Appointment.visit_id == visit.id)).first()
    facts = careplan.VisitFacts(occurred_at=visit.occurred_at.astimezone(UTC),
                                visit_number=visit.visit_number, time_zone=client.time_zone,
                                channels=tuple(visit.channels), appointment_at=appointment,
                                enrolled_at=now)
    outbox.add_or_reopen(session.connection(), [
        {"clinic_id": clinic.id, "client_id": client.id, "visit_id": visit.id, "kind": m.kind,
         "channel": m.channel, "recipient": client.phone if m.channel == "sms" else client.email,
         "due_at": m.due_at, "next_attempt_at": m.due_at, "created_at": now,
         "dedupe_key": f"visit:{visit.id}:{m.kind}:{m.channel}"}
        for m in careplan.plan_visit(facts, plan_settings_for(session, clinic, client))
        if m.kind == careplan.REBOOK_NUDGE])
