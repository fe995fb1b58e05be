"""All configuration, read from environment variables in one place (12-factor).

Every setting is documented in README.md and deploy/aftercare.env.example.
"""

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent  # the checkout, when the code runs from one
# The Jinja templates: inside the package when installed from the wheel (pyproject.toml maps the
# top-level templates/ there), at the top of the checkout otherwise.
TEMPLATES = next((d for d in (PACKAGE / "templates", ROOT / "templates") if d.is_dir()),
                 PACKAGE / "templates")
DEV_SECRET_KEY = "dev-only-change-me"  # used when SECRET_KEY is unset: development only
# deploy/aftercare.env.example's placeholder (tests/test_hardening.py keeps the two in step).
EXAMPLE_SECRET_KEY = "change-me-to-64-random-characters"
MIN_SECRET_KEY_BYTES = 32
# A deployment sets at least one of these; `make run` on a fresh clone sets none of them.
DEPLOYMENT_SETTINGS = ("SECRET_KEY", "DATABASE_URL", "PUBLIC_BASE_URL")


class UnsafeSettings(Exception):
    """The web app and the worker refuse to start with these settings."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


def _number(name: str, default: float, kind: type):
    raw = _env(name, str(default))
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


def _int(name: str, default: int) -> int:
    return _number(name, default, int)


def _float(name: str, default: float) -> float:
    return _number(name, default, float)


class Config:
    """Settings with their defaults, read from the environment at construction; `overrides`
    (tests, tools) win over the environment."""

    def __init__(self, overrides: dict | None = None) -> None:
        self.DATABASE_URL = _env("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'aftercare.db'}")
        self.SECRET_KEY = _env("SECRET_KEY", DEV_SECRET_KEY)
        # development | production. Unset: development only while none of DEPLOYMENT_SETTINGS
        # is set (a fresh clone's `make run`), so a deployment that forgot SECRET_KEY refuses.
        self.AFTERCARE_ENV = _env("AFTERCARE_ENV") or (
            "production" if any(_env(name) for name in DEPLOYMENT_SETTINGS) else "development")
        self.PUBLIC_BASE_URL = _env("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto headers are trusted.
        self.TRUSTED_PROXIES = _int("TRUSTED_PROXIES", 0)

        # Twilio: account SID + auth token, or an API key SID + secret (the auth token is still
        # needed to verify webhook signatures).
        self.TWILIO_ACCOUNT_SID = _env("TWILIO_ACCOUNT_SID")
        self.TWILIO_AUTH_TOKEN = _env("TWILIO_AUTH_TOKEN")
        self.TWILIO_API_KEY_SID = _env("TWILIO_API_KEY_SID")
        self.TWILIO_API_KEY_SECRET = _env("TWILIO_API_KEY_SECRET")
        self.TWILIO_FROM_NUMBER = _env("TWILIO_FROM_NUMBER")
        self.TWILIO_MESSAGING_SERVICE_SID = _env("TWILIO_MESSAGING_SERVICE_SID")
        self.TWILIO_API_BASE_URL = _env("TWILIO_API_BASE_URL")  # a Twilio-compatible host or a fake

        self.SMTP_HOST = _env("SMTP_HOST")
        self.SMTP_PORT = _int("SMTP_PORT", 587)
        self.SMTP_USER = _env("SMTP_USER")
        self.SMTP_PASSWORD = _env("SMTP_PASSWORD")
        self.SMTP_TLS = _env("SMTP_TLS", "starttls")  # starttls | ssl | none
        self.SMTP_SENDER = _env("SMTP_SENDER", "Aftercare <aftercare@localhost>")

        self.WORKER_TICK_SECONDS = _float("WORKER_TICK_SECONDS", 1.0)
        self.DISPATCH_BATCH_SIZE = _int("DISPATCH_BATCH_SIZE", 500)
        # Routine texts are claimed this far ahead of the send rate (an urgent one never waits
        # for them); urgent ones are looked for this often, besides being woken when written.
        self.DISPATCH_HORIZON_SECONDS = _float("DISPATCH_HORIZON_SECONDS", 2.0)
        self.URGENT_POLL_SECONDS = _float("URGENT_POLL_SECONDS", 0.25)
        self.SEND_RATE_PER_SECOND = _float("SEND_RATE_PER_SECOND", 30.0)  # per sender
        self.SEND_CONCURRENCY = _int("SEND_CONCURRENCY", 32)
        self.SEND_TIMEOUT_SECONDS = _float("SEND_TIMEOUT_SECONDS", 15.0)
        self.MAX_SEND_ATTEMPTS = _int("MAX_SEND_ATTEMPTS", 8)
        # Backoff after a transient failure: uniform in [b/2, b] with b = base * 2^(attempt-1),
        # up to the cap, and never sooner than the provider's Retry-After.
        self.RETRY_BACKOFF_SECONDS = _float("RETRY_BACKOFF_SECONDS", 30.0)
        self.RETRY_BACKOFF_MAX_SECONDS = _float("RETRY_BACKOFF_MAX_SECONDS", 3600.0)
        self.CLAIM_TIMEOUT_SECONDS = _int("CLAIM_TIMEOUT_SECONDS", 300)

        # Operations: logs, the web server (deploy/gunicorn.conf.py), health, metrics, retention.
        self.LOG_LEVEL = _env("LOG_LEVEL", "INFO").upper()
        self.WEB_BIND = _env("WEB_BIND", "127.0.0.1:8000")
        self.WEB_WORKERS = _int("WEB_WORKERS", 2)
        self.WEB_THREADS = _int("WEB_THREADS", 4)
        self.METRICS_TOKEN = _env("METRICS_TOKEN")  # when set, /metrics wants it as a Bearer token
        self.WORKER_METRICS_PORT = _int("WORKER_METRICS_PORT", 0)  # 0: the worker serves none
        self.HEARTBEAT_STALE_SECONDS = _int("HEARTBEAT_STALE_SECONDS", 60)
        # /readyz fails when the oldest due message has waited longer: dispatch is stalled.
        self.READY_MAX_DUE_AGE_SECONDS = _int("READY_MAX_DUE_AGE_SECONDS", 300)
        self.RETENTION_DAYS = _int("RETENTION_DAYS", 0)  # 0: keep everything
        self.AUDIT_RETENTION_DAYS = _int("AUDIT_RETENTION_DAYS", 0)  # the audit trail's; 0: keep
        # Request bodies above this many bytes are refused with 413 (Flask reads this key too).
        self.MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 1024 * 1024)
        # Requests per minute one API key may make (429 past it), counted in the database.
        self.API_RATE_PER_MINUTE = _int("API_RATE_PER_MINUTE", 600)
        # A staff session ends this many hours after login, used or not (and sooner when unused
        # for the clinic's idle timeout, a setting of each clinic).
        self.STAFF_SESSION_HOURS = _float("STAFF_SESSION_HOURS", 12)

        for key, value in (overrides or {}).items():
            if not hasattr(self, key) and key.isupper() and not key.startswith(("TESTING", "WTF")):
                raise KeyError(f"unknown setting {key}")
            setattr(self, key, value)

    @property
    def sms_configured(self) -> bool:
        has_auth = self.TWILIO_AUTH_TOKEN or (self.TWILIO_API_KEY_SID and self.TWILIO_API_KEY_SECRET)
        has_sender = self.TWILIO_FROM_NUMBER or self.TWILIO_MESSAGING_SERVICE_SID
        return bool(self.TWILIO_ACCOUNT_SID and has_auth and has_sender)

    @property
    def email_configured(self) -> bool:
        return bool(self.SMTP_HOST)

    def secret_key_problem(self) -> str | None:
        """Why SECRET_KEY cannot sign client links and sessions in production, or None."""
        if self.SECRET_KEY == DEV_SECRET_KEY:
            return "is unset or the development value"
        if self.SECRET_KEY == EXAMPLE_SECRET_KEY:
            return "is the placeholder of deploy/aftercare.env.example"
        if len(self.SECRET_KEY.encode()) < MIN_SECRET_KEY_BYTES:
            return f"is shorter than {MIN_SECRET_KEY_BYTES} bytes"
        return None

    def check_can_serve(self) -> None:
        """Raises UnsafeSettings unless the web app and the worker may start: with a SECRET_KEY
        nobody can know or guess (anyone could forge client links and staff sessions with one),
        or in development."""
        problem = self.secret_key_problem()
        if problem and self.AFTERCARE_ENV != "development":
            raise UnsafeSettings(
                f"SECRET_KEY {problem}: anyone could forge client links and staff sessions. Set "
                "it to 64 random characters (python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'), or AFTERCARE_ENV=development on a "
                "developer's machine.")

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k.isupper()}
