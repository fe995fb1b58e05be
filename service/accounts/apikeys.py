"""API keys: shown once at creation, stored as a SHA-256 digest, looked up by their prefix. A key
holds scopes (least privilege: a booking system that only enrols gets only `enrol`), may expire,
and records when it was last used; creating and revoking one is audited."""

import hashlib
import math
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, case, or_, update
from sqlmodel import Session

from service.care import audit
from service.domain.i18n import N_
from service.models import ApiKey, Clinic, UTCDateTime, utcnow

PREFIX_LENGTH = 12  # "ak_" + 9 characters: enough to find the row, useless without the rest
WINDOW = timedelta(minutes=1)
# What a key may do; the API's one table (SCOPE_OF in service/web/api) names one per endpoint.
# The audit log is a scope of its own: who did what to a client says more than the client's rows.
SCOPES = {"enrol": N_("enrol visits"), "read": N_("read clients, visits, check-ins and escalations"),
          "acknowledge": N_("acknowledge escalations"), "audit": N_("read a client's audit log")}

# Every API request runs this statement first: it finds the key (unless revoked or expired), counts
# the request in the key's current minute and notes the key's last use, in one round trip. The
# digest is compared in SQL: timing reveals nothing of the key (the digest of a guess is not
# something a caller can steer), and a caller who knows only the prefix (staff see it in
# settings) cannot use up the key's minute.
_WINDOW, _NOW = bindparam("window", type_=UTCDateTime), bindparam("now", type_=UTCDateTime)
_COUNT = (update(ApiKey)
          .where(ApiKey.prefix == bindparam("key_prefix"), ApiKey.key_hash == bindparam("digest"),
                 ApiKey.revoked_at.is_(None),
                 or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > _NOW))
          .values(window_count=case((ApiKey.window_start == _WINDOW, ApiKey.window_count + 1),
                                    else_=1),
                  window_start=_WINDOW, last_used_at=_NOW)
          .returning(ApiKey.clinic_id, ApiKey.scopes, ApiKey.window_count))


class Caller(NamedTuple):
    """Who an API request comes from: the key's clinic and what the key may do."""

    clinic: Clinic
    scopes: frozenset[str]


class OverRate(Exception):
    """The key has made its requests for this minute."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after  # seconds until the next minute


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue(session: Session, clinic: Clinic, name: str, *, scopes=tuple(SCOPES),
          expires_at: datetime | None = None, actor: str = "system") -> str:
    """A new key (every scope unless told: the keys made before scopes existed could do
    everything). The audit row names the key by its prefix, never the key."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}")
    raw = "ak_" + secrets.token_urlsafe(32)
    key = ApiKey(clinic_id=clinic.id, name=name, prefix=raw[:PREFIX_LENGTH], key_hash=_digest(raw),
                 scopes=" ".join(s for s in SCOPES if s in scopes), expires_at=expires_at)
    session.add(key)
    audit.record(session, "api_key_created", clinic_id=clinic.id, actor=actor, name=name,
                 prefix=key.prefix, scopes=key.scopes.split(),
                 expires_at=expires_at and expires_at.isoformat())
    session.commit()
    return raw


def caller(session: Session, raw: str, now: datetime, per_minute: int) -> Caller | None:
    """The key's clinic and scopes, or None for an unknown, revoked, expired or wrong key; OverRate past
    `per_minute` requests in this minute. The count is in the database, so it holds across
    every web process; it is committed at once (autocommit), so that requests with one key never
    wait for each other's transactions on the key's row."""
    window = now.replace(second=0, microsecond=0)
    params = {"key_prefix": raw[:PREFIX_LENGTH], "digest": _digest(raw), "window": window,
              "now": now}
    with session.get_bind().connect() as conn:
        found = conn.execution_options(isolation_level="AUTOCOMMIT").execute(_COUNT, params).first()
    if found is None:
        return None
    clinic_id, scopes, count = found
    if count > per_minute:
        raise OverRate(math.ceil((window + WINDOW - now).total_seconds()))
    return Caller(session.get(Clinic, clinic_id), frozenset(scopes.split()))


def revoke(session: Session, key: ApiKey, *, actor: str) -> None:
    key.revoked_at = utcnow()
    session.add(key)
    audit.record(session, "api_key_revoked", clinic_id=key.clinic_id, actor=actor, name=key.name,
                 prefix=key.prefix, scopes=key.scopes.split())
    session.commit()
