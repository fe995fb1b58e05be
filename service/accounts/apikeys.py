"""API keys: shown once at creation, stored as a SHA-256 digest, looked up by their prefix."""

import hashlib
import math
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, case, update
from sqlmodel import Session

from service.models import ApiKey, Clinic, UTCDateTime, utcnow

PREFIX_LENGTH = 12  # "ak_" + 9 characters: enough to find the row, useless without the rest
WINDOW = timedelta(minutes=1)

# Every API request runs this statement first: it finds the key and counts the request in the
# key's current minute. The digest is compared in SQL: timing reveals nothing of the key (the
# digest of a guess is not something a caller can steer), and a caller who knows only the
# prefix (staff see it in settings) cannot use up the key's minute.
_WINDOW = bindparam("window", type_=UTCDateTime)
_COUNT = (update(ApiKey)
          .where(ApiKey.prefix == bindparam("key_prefix"), ApiKey.key_hash == bindparam("digest"),
                 ApiKey.revoked_at.is_(None))
          .values(window_count=case((ApiKey.window_start == _WINDOW, ApiKey.window_count + 1),
                                    else_=1),
                  window_start=_WINDOW)
          .returning(ApiKey.clinic_id, ApiKey.window_count))


class OverRate(Exception):
    """The key has made its requests for this minute."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after  # seconds until the next minute


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(session: Session, clinic: Clinic, name: str) -> str:
    raw = "ak_" + secrets.token_urlsafe(32)
    session.add(ApiKey(clinic_id=clinic.id, name=name, prefix=raw[:PREFIX_LENGTH],
                       key_hash=_digest(raw)))
    session.commit()
    return raw


def clinic_for(session: Session, raw: str, now: datetime, per_minute: int) -> Clinic | None:
    """The key's clinic, or None for an unknown, revoked or wrong key; OverRate past
    `per_minute` requests in this minute. The count is in the database, so it holds across
    every web process; it is committed at once (autocommit), so that requests with one key never
    wait for each other's transactions on the key's row."""
    window = now.replace(second=0, microsecond=0)
    params = {"key_prefix": raw[:PREFIX_LENGTH], "digest": _digest(raw), "window": window}
    with session.get_bind().connect() as conn:
        found = conn.execution_options(isolation_level="AUTOCOMMIT").execute(_COUNT, params).first()
    if found is None:
        return None
    clinic_id, count = found
    if count > per_minute:
        raise OverRate(math.ceil((window + WINDOW - now).total_seconds()))
    return session.get(Clinic, clinic_id)


def revoke(session: Session, key: ApiKey) -> None:
    key.revoked_at = utcnow()
    session.add(key)
    session.commit()
