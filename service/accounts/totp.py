"""A staff member's second factor: a TOTP secret (RFC 6238, the codes an authenticator app shows)
and ten single-use recovery codes for a lost phone.

A code is accepted for the current 30-second step or the one either side (a phone's clock
drifts), and only for a step later than the last one accepted: a code seen over a shoulder or in
a proxy's log cannot be used again. Recovery codes are kept as SHA-256 digests, as API keys are:
they are long and random, so a slow hash buys nothing.
"""

import base64
import hashlib
import hmac
import secrets

import pyotp
import segno
from sqlalchemy import or_, update
from sqlmodel import Session, delete, func, select

from service.models import RecoveryCode, StaffUser, utcnow

ISSUER = "Aftercare"
RECOVERY_CODES = 10
WINDOW = 1  # steps either side of now
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes are copied from paper


def enrolling_secret(key: str, staff_id: int, nonce: str) -> str:
    """The secret offered at enrolment, derived from the app's SECRET_KEY and a random nonce: the
    page keeps only the nonce in the Flask session, whose cookie is signed but readable, so a
    cookie captured then does not hold a second factor."""
    digest = hmac.new(key.encode(), f"totp:{staff_id}:{nonce}".encode(), "sha256").digest()
    return base64.b32encode(digest[:20]).decode()  # 160 bits, as pyotp.random_base32


def qr_data_uri(secret: str, email: str) -> str:
    """The enrolment QR code as an SVG data: URI (the page's CSP allows data: images, no script)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def accepted_step(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step `code` is right for (pyotp's verify with valid_window=WINDOW, which does not
    say which step matched), if later than `last_step`; None otherwise."""
    otp = pyotp.TOTP(secret)
    now = otp.timecode(utcnow())
    for step in range(now - WINDOW, now + WINDOW + 1):
        if step > (last_step or 0) and pyotp.utils.strings_equal(code, otp.generate_otp(step)):
            return step
    return None


def _digest(code: str) -> str:
    return hashlib.sha256(_plain(code).encode()).hexdigest()


def _plain(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def enable(session: Session, user: StaffUser, secret: str, code: str) -> list[str] | None:
    """Saves `secret` as the user's second factor if `code` is right for it, with new recovery
    codes (returned, to be shown once); None if the code is wrong."""
    step = accepted_step(secret, code.strip(), None)
    if step is None:
        return None
    user.totp_secret, user.totp_last_step = secret, step
    session.add(user)
    session.exec(delete(RecoveryCode).where(RecoveryCode.staff_id == user.id))
    codes = ["".join(secrets.choice(_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    codes = [f"{code[:5]}-{code[5:]}" for code in codes]
    session.add_all(RecoveryCode(staff_id=user.id, code_hash=_digest(code)) for code in codes)
    return codes


def disable(session: Session, user: StaffUser) -> None:
    """No second factor any more (turned off, or reset by an owner for a lost phone)."""
    user.totp_secret = user.totp_last_step = None
    session.add(user)
    session.exec(delete(RecoveryCode).where(RecoveryCode.staff_id == user.id))


def check(session: Session, user: StaffUser, code: str) -> str | None:
    """What `code` is for the user, if it is right: "totp" (its step is then used up) or
    "recovery_code" (then used up); None when it is wrong, reused or the user has no factor.
    Each use is a conditional UPDATE: of two requests with one code, one wins."""
    if not user.totp_secret:
        return None
    if _plain(code).isdigit():
        step = accepted_step(user.totp_secret, _plain(code), user.totp_last_step)
        used = step is not None and session.exec(
            update(StaffUser).where(StaffUser.id == user.id, or_(
                StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step))
            .values(totp_last_step=step)).rowcount
        return "totp" if used else None
    used = session.exec(
        update(RecoveryCode).where(RecoveryCode.staff_id == user.id,
                                   RecoveryCode.code_hash == _digest(code),
                                   RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())).rowcount
    return "recovery_code" if used else None


def recovery_codes_left(session: Session, user: StaffUser) -> int:
    return session.exec(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.staff_id == user.id, RecoveryCode.used_at.is_(None))).one()
