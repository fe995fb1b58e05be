"""The client's personal aftercare page link: signed and expiring (itsdangerous), no login, and no
personal data in the URL beyond the signed token.

The link is the client's credential, so it carries the client's `link_version`: raising it (staff
revoke a link, or the client is erased) makes every link sent so far invalid. The page's forms
carry a form token bound to the same (client, version) instead of a cookie session: they work in a
browser that has no cookie for us, and the form's random id makes a repeated post a no-op.
"""

import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

from service.config import Config
from service.models import Client

SALT = "client-page"
FORM_SALT = "client-page-form"
MAX_AGE_SECONDS = 90 * 24 * 3600  # covers a course of visits; every new text carries a fresh link


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
