"""API keys: shown once at creation, stored as a SHA-256 digest, looked up by their prefix."""

import hashlib
import hmac
import secrets

from sqlalchemy import bindparam
from sqlmodel import Session, select

from service.models import ApiKey, Clinic, utcnow

PREFIX_LENGTH = 12  # "ak_" + 9 characters: enough to find the row, useless without the rest
# Every API request asks: one query, built once (building it costs about as much as running it).
_KEY_AND_CLINIC = (select(ApiKey.key_hash, ApiKey.revoked_at, Clinic)
                   .join(Clinic, Clinic.id == ApiKey.clinic_id)
                   .where(ApiKey.prefix == bindparam("prefix")))


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(session: Session, clinic: Clinic, name: str) -> str:
    raw = "ak_" + secrets.token_urlsafe(32)
    session.add(ApiKey(clinic_id=clinic.id, name=name, prefix=raw[:PREFIX_LENGTH],
                       key_hash=_digest(raw)))
    session.commit()
    return raw


def clinic_for(session: Session, raw: str) -> Clinic | None:
    """The key's clinic, or None for an unknown, revoked or wrong key."""
    found = session.exec(_KEY_AND_CLINIC, params={"prefix": raw[:PREFIX_LENGTH]}).first()
    if found is None:
        return None
    key_hash, revoked_at, clinic = found
    if revoked_at or not hmac.compare_digest(key_hash, _digest(raw)):
        return None
    return clinic


def revoke(session: Session, key: ApiKey) -> None:
    key.revoked_at = utcnow()
    session.add(key)
    session.commit()
