"""The client's personal aftercare page link: signed and expiring (itsdangerous), no login, and no
personal data in the URL beyond the signed token.

The link is the client's credential, so it carries the client's `link_version`: raising it (staff
revoke a link, or the client is erased) makes every link sent so far invalid. The page's forms
carry a form token bound to the same (client, version) instead of a cookie session: they work in a
browser that has no cookie for us, and the form's random id makes a repeated post a no-op.
"""

import secrets
from datetime import datetime

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session

from service.care import audit
from service.care.enrolment import channels_for
from service.config import Config
from service.domain.careplan import defer_for_quiet_hours
from service.domain.messages import MessageKind
from service.models import Client, Clinic, Message

SALT = "client-page"
FORM_SALT = "client-page-form"
MAX_AGE_SECONDS = 90 * 24 * 3600  # covers a course of visits; every new text carries a fresh link
PAGE_LINK = MessageKind.PAGE_LINK  # the message that brings a client their new link


def _serializer(config: Config, salt: str = SALT) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(config.SECRET_KEY, salt=salt)


def client_page_url(config: Config, client_id: int, link_version: int) -> str:
    return f"{config.PUBLIC_BASE_URL}/c/{_serializer(config).dumps([client_id, link_version])}"


def read_token(config: Config, token: str, max_age: int = MAX_AGE_SECONDS) -> tuple[int, int] | None:
    """(client id, link version), or None for a tampered or expired token. Links sent before
    links were versioned carry a bare client id: version 0."""
    try:
        value = _serializer(config).loads(token, max_age=max_age)
    except BadSignature:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value, 0
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        return value[0], value[1]
    return None


def form_token(config: Config, client: Client) -> str:
    """A fresh token for one form of the client's page: (client, link version, random form id)."""
    return _serializer(config, FORM_SALT).dumps(
        [client.id, client.link_version, secrets.token_urlsafe(16)])


def form_id_from(config: Config, token: str | None, client: Client,
                 max_age: int = MAX_AGE_SECONDS) -> str | None:
    """The form's id when the token was made for this client's current link; None otherwise."""
    try:
        client_id, version, form_id = _serializer(config, FORM_SALT).loads(token or "",
                                                                           max_age=max_age)
    except (BadSignature, ValueError, TypeError):
        return None
    if client_id != client.id or version != client.link_version or not isinstance(form_id, str):
        return None
    return form_id


def revoke_and_resend(session: Session, clinic: Clinic, client: Client, now: datetime,
                      actor: str) -> tuple[str, ...]:
    """Every link sent so far stops working; a new one goes out through the outbox on the
    client's channels (rendered at send time with the current version), outside quiet hours.
    Returns those channels: none when the client cannot be reached. The caller commits."""
    client.link_version += 1
    session.add(client)
    channels = channels_for(client, clinic)
    due = defer_for_quiet_hours(now, client.time_zone, clinic.plan_settings())
    for channel in channels:
        session.add(Message(
            clinic_id=clinic.id, client_id=client.id, kind=PAGE_LINK, channel=channel,
            recipient=client.phone if channel == "sms" else client.email, due_at=due,
            next_attempt_at=due, priority=0,
            dedupe_key=f"{PAGE_LINK}:{client.id}:{client.link_version}:{channel}",
        ))
    audit.record(session, "link_revoked", clinic_id=clinic.id, client_id=client.id, actor=actor,
                 link_version=client.link_version, sent_by=list(channels))
    return channels
