"""Contraindication reviews (care/screening.py): the list clinicians work through, closing a
review, and the owner's approval (back walking may go on) or refusal of a request."""

from datetime import datetime

from flask import flash, redirect, render_template, request, url_for
from flask_babel import LazyString, lazy_gettext
from flask_babel import gettext as _
from flask_login import current_user
from sqlmodel import Session

from service import db
from service.care import audit, screening
from service.domain.contraindications import CONTRAINDICATIONS, approvable
from service.domain.roles import Permission
from service.models import ScreeningReview, Visit, utcnow
from service.web.staff import bp, clinic, owned, requires


@bp.app_context_processor
def reviews_waiting() -> dict:
    """The dashboard's "Needs review: N", counted only where a page asks for it."""
    return {"reviews_waiting": lambda: screening.count_waiting(db.session(), current_user.clinic_id)}


def screened(session: Session, visit: Visit, reason: str, now: datetime) -> None:
    """After the enrol form: a reason given with a ticked box is the owner's approval, or anyone
    else's request for it. Pregnancy: never, and the form says so."""
    reason = reason.strip()[:500]
    review = visit.contraindications and screening.review_of(session, visit)
    if not review:
        return
    if reason and not approvable(review.contraindications):
        flash(_("Pregnancy cannot be approved: no back walking. On-call has been told."))
    elif reason and current_user.can(Permission.OVERRIDE_SCREENING):
        screening.approve(session, review, current_user.id, reason, now)
        flash(_("Back walking approved despite the checklist; your reason is recorded."))
    elif reason:
        screening.request_override(session, review, current_user.id, reason, now)
        flash(_("Aftercare planned. Your reason goes to the owner, who decides on back walking."))
    else:
        flash(_("Aftercare planned. Rebooking waits until the checklist is reviewed."))
    session.commit()


@bp.get("/screening")
@requires(Permission.VIEW_CLINICAL)
def reviews():
    return _page()


def _page(problem: str | None = None, status: int = 200):
    session = db.session()
    rows = screening.waiting(session, current_user.clinic_id)
    audit.record(session, "screening_reviews_viewed", clinic_id=current_user.clinic_id,
                 actor=f"staff:{current_user.id}", shown=sorted({client.id for _, client in rows}))
    session.commit()
    return render_template("web/staff/screening.html", clinic=clinic(), rows=rows, problem=problem,
                           labels=CONTRAINDICATIONS, approvable=approvable), status


@bp.post("/screening/<int:review_id>/close")
@requires(Permission.ACKNOWLEDGE)
def close_review(review_id: int):
    return _decide(review_id, screening.close, lazy_gettext("Review closed: rebooking stays held."))


@bp.post("/screening/<int:review_id>/approve")
@requires(Permission.OVERRIDE_SCREENING)
def approve_review(review_id: int):
    return _decide(review_id, screening.approve, lazy_gettext("Approved: back walking may go on."))


@bp.post("/screening/<int:review_id>/decline")
@requires(Permission.OVERRIDE_SCREENING)
def decline_review(review_id: int):
    return _decide(review_id, screening.decline,
                   lazy_gettext("Request declined: rebooking stays held."))


def _decide(review_id: int, decision, done: LazyString):
    review = owned(ScreeningReview, review_id)
    note = (request.form.get("note") or "").strip()[:500] or None
    session = db.session()
    try:
        decision(session, review, current_user.id, note, utcnow())
    except screening.NotWaiting as exc:
        session.rollback()
        return _page(_("Review %(id)s: %(why)s.", id=review_id, why=exc), 409)
    session.commit()
    flash(str(done))
    return redirect(url_for("staff.reviews"))
