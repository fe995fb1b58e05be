"""Staff sessions, server-side: the cookie carries only a random token, the session is the row
whose id is the token's SHA-256 (a stolen database does not give working cookies). Ending the row
ends the session at once, whatever cookie anyone kept: logout, a password change, deactivation,
an owner's "sign out everywhere". A session also ends when unused for the clinic's idle timeout
or older than STAFF_SESSION_HOURS.

Flask-Login finds the user through `load` (a request loader): login_user and its remember-me
cookie are not used, so nothing in the cookie names the user.
"""

import hashlib
import secrets
from datetime import timedelta
from functools import wraps

from flask import current_app, g, redirect, request, session, url_for
from sqlmodel import Session, select, update

from service import db
from service.extensions import login_manager
from service.models import Clinic, StaffSession, StaffUser, utcnow

SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often, not per request
REAUTH_WITHIN = timedelta(minutes=10)  # sensitive actions want the password this recently


def _id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(db_session: Session, user: StaffUser) -> None:
    """A new session for `user`; the Flask session is cleared first (no fixation)."""
    token = secrets.token_urlsafe(32)
    db_session.add(StaffSession(id=_id(token), staff_id=user.id,
                                remote_addr=(request.remote_addr or "?")[:64]))
    session.clear()
    session["sid"] = token


@login_manager.request_loader
def load(_request) -> StaffUser | None:
    """The user of this request's live session, or None (Flask-Login then sends to the login
    page with `next`)."""
    token = session.get("sid")
    if not isinstance(token, str):
        return None
    db_session = db.session()
    found = db_session.exec(
        select(StaffSession, StaffUser, Clinic)
        .join(StaffUser, StaffUser.id == StaffSession.staff_id)
        .join(Clinic, Clinic.id == StaffUser.clinic_id)
        .where(StaffSession.id == _id(token), StaffSession.ended_at.is_(None))).first()
    now = utcnow()
    if found is None:
        session.pop("sid")
        return None
    row, user, here = found
    lifetime = timedelta(hours=current_app.extensions["aftercare.config"].STAFF_SESSION_HOURS)
    if (not user.active or now - row.last_seen_at > timedelta(minutes=here.idle_timeout_minutes)
            or now - row.created_at > lifetime):
        row.ended_at = now
        db_session.add(row)
        db_session.commit()
        session.pop("sid")
        return None
    if now - row.last_seen_at >= SEEN_EVERY:
        row.last_seen_at = now
        db_session.add(row)
        db_session.commit()
    g.staff_session = row
    return user


def end_current(db_session: Session) -> None:
    row = g.get("staff_session")
    if row is not None:
        row.ended_at = utcnow()
        db_session.add(row)
    session.clear()


def end_all(db_session: Session, staff_id: int, *, keep_current: bool = False) -> int:
    """End every live session of a staff member (all but this request's when keep_current)."""
    query = update(StaffSession).where(StaffSession.staff_id == staff_id,
                                       StaffSession.ended_at.is_(None))
    current = g.get("staff_session")
    if keep_current and current is not None:
        query = query.where(StaffSession.id != current.id)
    return db_session.exec(query.values(ended_at=utcnow())).rowcount


def confirmed(db_session: Session) -> None:
    """The password was just typed again: sensitive actions are open for REAUTH_WITHIN."""
    row = g.staff_session
    row.reauth_at = utcnow()
    db_session.add(row)


def recent_password(back: str | None = None):
    """Sensitive routes (export, erase, API keys, staff changes) want the password typed within
    REAUTH_WITHIN (at login or on the confirm page), so that a session left open is not enough.
    The confirm page returns to a GET itself; a POST cannot be replayed, so to `back` (an
    endpoint) or the same path's GET."""
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            row = g.get("staff_session")
            if row is None or utcnow() - (row.reauth_at or row.created_at) > REAUTH_WITHIN:
                there = request.full_path if request.method == "GET" else (
                    url_for(back) if back else request.path)
                return redirect(url_for("auth.confirm_password", next=there.rstrip("?")))
            return view(*args, **kwargs)
        return wrapper
    return decorate
