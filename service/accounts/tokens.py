"""One-time email links for staff: an invitation to set a first password, a password reset.

The link carries a random token; only its SHA-256 is stored (StaffToken.id), as for sessions and
API keys. A link works once, before it expires, for an active account: `use` marks it used in
the one UPDATE that checks all three, so two tabs (or a replayed POST) cannot both use it. A new
link for the same purpose ends the older ones.

The email goes through the outbox like every message (priority 0: someone is waiting for it).
Its link sits in the message's params until sent and in its stored body after: a database reader
could use one still unused until it expires (7 days, 30 minutes). What bounds that is the
lifetime and the single use; a used, expired or replaced link is worthless.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, func, select, update

from service.domain.messages import MessageKind
from service.messaging import outbox
from service.models import Message, StaffToken, StaffUser

INVITE, RESET = "invite", "reset"
LIFETIME = {INVITE: timedelta(days=7), RESET: timedelta(minutes=30)}
KIND = {INVITE: MessageKind.STAFF_INVITE, RESET: MessageKind.PASSWORD_RESET}
PATH = {INVITE: "/invite/", RESET: "/reset-password/"}
# Reset emails to one address at most this often, whoever asks from wherever (an inbox is not
# a target); a request beyond gets the same answer and sends nothing.
RESETS_PER_HOUR = 3


def _id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, user: StaffUser, purpose: str, base_url: str, now: datetime) -> str:
    """A new link for `user`, emailed through the outbox (committed by the caller); returns
    the link (the CLI prints it). The user's older unused links of this purpose stop working."""
    session.exec(update(StaffToken).where(
        StaffToken.staff_id == user.id, StaffToken.purpose == purpose,
        StaffToken.used_at.is_(None), StaffToken.expires_at > now).values(expires_at=now))
    token = secrets.token_urlsafe(32)
    row = StaffToken(id=_id(token), staff_id=user.id, purpose=purpose, created_at=now,
                     expires_at=now + LIFETIME[purpose])
    session.add(row)
    link = f"{base_url.rstrip('/')}{PATH[purpose]}{token}"
    session.add(Message(
        clinic_id=user.clinic_id, kind=KIND[purpose], channel="email", recipient=user.email,
        due_at=now, next_attempt_at=now, priority=outbox.URGENT,
        params={"link": link, "staff_name": user.name,
                "valid_for": "7 days" if purpose == INVITE else "30 minutes"},
        dedupe_key=f"staff_token:{row.id}"))
    return link


def recent_resets(session: Session, user: StaffUser, now: datetime) -> int:
    return session.exec(select(func.count()).select_from(StaffToken).where(
        StaffToken.staff_id == user.id, StaffToken.purpose == RESET,
        StaffToken.created_at > now - timedelta(hours=1))).one()


def _usable(token: str, purpose: str, now: datetime):
    active = select(StaffUser.id).where(StaffUser.active)
    return (StaffToken.id == _id(token), StaffToken.purpose == purpose,
            StaffToken.used_at.is_(None), StaffToken.expires_at > now,
            StaffToken.staff_id.in_(active))


def holder(session: Session, token: str, purpose: str, now: datetime) -> StaffUser | None:
    """Whose link this is, if it still works; changes nothing (a mail scanner's GET must not
    use it up)."""
    return session.exec(select(StaffUser).join(StaffToken, StaffToken.staff_id == StaffUser.id)
                        .where(*_usable(token, purpose, now))).first()


def use(session: Session, token: str, purpose: str, now: datetime) -> StaffUser | None:
    """Marks the link used and returns its user, or None when it no longer works. The caller
    sets the password in the same transaction."""
    staff_id = session.exec(update(StaffToken).where(*_usable(token, purpose, now))
                            .values(used_at=now).returning(StaffToken.staff_id)).scalar()
    return session.get(StaffUser, staff_id) if staff_id else None
