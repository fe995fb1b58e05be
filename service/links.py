"""The client's personal aftercare page link: signed and expiring (itsdangerous), no login, and no
personal data in the URL beyond the signed token."""

from itsdangerous import BadSignature, URLSafeTimedSerializer

from service.config import Config

SALT = "client-page"
MAX_AGE_SECONDS = 90 * 24 * 3600  # covers a course of visits; every new text carries a fresh link


def _serializer(config: Config) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(config.SECRET_KEY, salt=SALT)


def client_page_url(config: Config, client_id: int) -> str:
    return f"{config.PUBLIC_BASE_URL}/c/{_serializer(config).dumps(client_id)}"


def client_id_from_token(config: Config, token: str, max_age: int = MAX_AGE_SECONDS) -> int | None:
    """None for a tampered or expired token."""
    try:
        return int(_serializer(config).loads(token, max_age=max_age))
    except (BadSignature, ValueError, TypeError):
        return None
