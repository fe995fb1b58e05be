"""API keys: shown once at creation, stored as a SHA-256 digest, looked up by their prefix."""

import hashlib
import hmac
import secrets

from sqlmodel import Session, select

from service.models import ApiKey, Clinic, utcnow

PREFIX_LENGTH = 12  # "ak_" + 9 characters: enough to find the row, useless without the rest


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(session: Session, clinic: Clinic, name: str) -> str:
    raw = "ak_" + secrets.token_urlsafe(32)
    session.add(ApiKey(clinic_id=clinic.id, name=name, prefix=raw[:PREFIX_LENGTH],
                       key_hash=_digest(raw)))
    session.commit()
    return raw


def clinic_for(session: Session, raw: str) -> Clinic | None:
    key = session.exec(select(ApiKey).where(ApiKey.prefix == raw[:PREFIX_LENGTH])).first()
    if key is None or key.revoked_at or not hmac.compare_digest(key.key_hash, _digest(raw)):
        return None
    return session.get(Clinic, key.clinic_id)


def revoke(session: Session, key: ApiKey) -> None:
    key.revoked_at = utcnow()
    session.add(key)
    session.commit()
