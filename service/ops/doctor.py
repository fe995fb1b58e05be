"""Is this installation set up right? `aftercare doctor` checks every setting (COVERED says which
check reads which; a test keeps it complete), then what they point at: the database, Twilio's
credentials (their format: a real request is `aftercare send-test-sms`), the SMTP server and the
public URL. Secrets are never printed."""

import asyncio
import re
import smtplib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from service.care.schemas import e164
from service.config import Config, UnsafeSettings
from service.messaging.channels import Outgoing, SendError
from service.messaging.channels.email_smtp import SMTPEmail
from service.messaging.channels.sms_twilio import TwilioSMS
from service.models import Clinic
from service.ops import readiness

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Finding:
    level: str
    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.level:<4}  {self.name}: {self.detail}"


def _positive(value) -> bool:
    return value > 0


RULES = {
    "WORKER_TICK_SECONDS": (_positive, "more than 0"),
    "DISPATCH_BATCH_SIZE": (_positive, "more than 0"),
    "DISPATCH_HORIZON_SECONDS": (_positive, "more than 0"),
    "URGENT_POLL_SECONDS": (_positive, "more than 0"),
    "SEND_RATE_PER_SECOND": (_positive, "more than 0"),
    "SEND_CONCURRENCY": (_positive, "more than 0"),
    "SEND_TIMEOUT_SECONDS": (_positive, "more than 0"),
    "MAX_SEND_ATTEMPTS": (_positive, "more than 0"),
    "CLAIM_TIMEOUT_SECONDS": (_positive, "more than 0"),
    "RETRY_BACKOFF_SECONDS": (_positive, "more than 0"),
    "RETRY_BACKOFF_MAX_SECONDS": (_positive, "more than 0"),
    "MAX_CONTENT_LENGTH": (_positive, "more than 0"),
    "API_RATE_PER_MINUTE": (_positive, "more than 0"),
    "STAFF_SESSION_HOURS": (_positive, "more than 0"),
    "HEARTBEAT_STALE_SECONDS": (_positive, "more than 0"),
    "READY_MAX_DUE_AGE_SECONDS": (_positive, "more than 0"),
    "AFTERCARE_ENV": (lambda v: v in ("development", "production"), "development or production"),
    "WEB_WORKERS": (_positive, "more than 0"),
    "WEB_THREADS": (_positive, "more than 0"),
    "RETENTION_DAYS": (lambda v: v >= 0, "0 (keep everything) or more"),
    "AUDIT_RETENTION_DAYS": (lambda v: v >= 0, "0 (keep everything) or more"),
    "TRUSTED_PROXIES": (lambda v: v >= 0, "0 or more"),
    "SMTP_PORT": (lambda v: 0 < v < 65536, "a port number"),
    "WORKER_METRICS_PORT": (lambda v: 0 <= v < 65536, "a port number, or 0 for none"),
    "SMTP_TLS": (lambda v: v in ("starttls", "ssl", "none"), "starttls, ssl or none"),
    "LOG_LEVEL": (lambda v: v in ("DEBUG", "INFO", "WARNING", "ERROR"), "DEBUG, INFO, WARNING or ERROR"),
    "WEB_BIND": (re.compile(r"unix:.+|\S*:\d+").fullmatch, "host:port or unix:/path"),
}
TWILIO_FORMATS = {  # what Twilio's console shows: the value itself is never printed
    "TWILIO_ACCOUNT_SID": (r"AC[0-9a-f]{32}", "AC and 32 hex digits"),
    "TWILIO_AUTH_TOKEN": (r"[0-9a-f]{32}", "32 hex digits"),
    "TWILIO_API_KEY_SID": (r"SK[0-9a-f]{32}", "SK and 32 hex digits"),
    "TWILIO_API_KEY_SECRET": (r"[0-9A-Za-z]{32}", "32 letters and digits"),
    "TWILIO_MESSAGING_SERVICE_SID": (r"MG[0-9a-f]{32}", "MG and 32 hex digits"),
}
COVERED = frozenset({*RULES, *TWILIO_FORMATS, "TWILIO_FROM_NUMBER", "TWILIO_API_BASE_URL",
                     "DATABASE_URL", "SECRET_KEY", "PUBLIC_BASE_URL", "METRICS_TOKEN",
                     "SMTP_HOST", "SMTP_USER", "SMTP_PASSWORD", "SMTP_SENDER"})


def run(config: Config, engine: Engine, now: datetime) -> list[Finding]:
    return [*_settings(config), *_database(config, engine, now), *_twilio(config),
            *_senders(engine), *_smtp(config), *_public_url(config)]


def _senders(engine: Engine) -> Iterator[Finding]:
    """With several clinics, each texts from its own sender: replies and STOPs are routed by the
    number they were sent to, so clinics sharing the default one could not be told apart."""
    try:
        with engine.connect() as conn:
            clinics = conn.execute(select(Clinic.id, Clinic.name, Clinic.sms_sender)
                                   .order_by(Clinic.id)).all()
    except SQLAlchemyError:  # the database finding says why
        return
    lacking = [clinic for clinic in clinics if clinic.sms_sender is None]
    if len(clinics) > 1 and lacking:
        for clinic in lacking:
            yield Finding(FAIL, "clinic sender", f"clinic {clinic.id} ({clinic.name}) shares the "
                          f"default sender with other clinics: aftercare set-sender {clinic.id} "
                          "--sender +1... (or --messaging-service MG...)")
    elif len(clinics) > 1:
        yield Finding(OK, "clinic senders", f"each of the {len(clinics)} clinics has its own")


def _settings(config: Config) -> Iterator[Finding]:
    bad = [name for name, (valid, _) in RULES.items() if not valid(getattr(config, name))]
    for name in bad:
        yield Finding(FAIL, name, f"is {getattr(config, name)!r}; it must be {RULES[name][1]}")
    if not bad:
        yield Finding(OK, "settings", f"{len(RULES)} numbers and choices are valid")
    problem = config.secret_key_problem()
    try:
        config.check_can_serve()  # the same rule as the web app's and the worker's start
    except UnsafeSettings:
        yield Finding(FAIL, "SECRET_KEY", f"{problem}: the web app and the worker refuse to start "
                                          "(anyone could forge client links); use 64 random characters")
    else:
        if problem:
            yield Finding(WARN, "SECRET_KEY", f"{problem}: accepted only because AFTERCARE_ENV is "
                                              "development")
    if config.CLAIM_TIMEOUT_SECONDS < 2 * config.SEND_TIMEOUT_SECONDS:
        yield Finding(WARN, "CLAIM_TIMEOUT_SECONDS", "is under twice SEND_TIMEOUT_SECONDS: a slow "
                                                     "send could be reclaimed and sent twice")
    if not config.METRICS_TOKEN:
        yield Finding(WARN, "METRICS_TOKEN", "is not set: /metrics is open to whoever reaches the "
                                             "web app (set it, or block /metrics at the proxy)")


def _database(config: Config, engine: Engine, now: datetime) -> Iterator[Finding]:
    if config.DATABASE_URL.startswith("sqlite"):
        yield Finding(WARN, "DATABASE_URL", "SQLite serves one clinic on one machine; use "
                                            "PostgreSQL for several workers")
    results = readiness.check(engine, now, timedelta(seconds=config.HEARTBEAT_STALE_SECONDS),
                              timedelta(seconds=config.READY_MAX_DUE_AGE_SECONDS)).checks
    # Workers usually start after the doctor has had its say: a missing heartbeat, and the due
    # messages waiting for one, only warn.
    levels = {"database": FAIL, "migrations": FAIL, "worker": WARN, "dispatch": WARN}
    for name, result in results.items():
        if result == readiness.OK:
            yield Finding(OK, name, "reachable" if name == "database" else "ok")
        elif result != readiness.SKIPPED:
            yield Finding(levels[name], name, result)


def _twilio(config: Config) -> Iterator[Finding]:
    names = [*TWILIO_FORMATS, "TWILIO_FROM_NUMBER"]
    if not any(getattr(config, name) for name in names):
        yield Finding(WARN, "twilio", "not configured: texts are printed by the worker, not sent")
        return
    problems = [Finding(FAIL, name, f"does not look like a Twilio value ({shape})")
                for name, (pattern, shape) in TWILIO_FORMATS.items()
                if getattr(config, name) and not re.fullmatch(pattern, getattr(config, name))]
    if not config.TWILIO_ACCOUNT_SID:
        problems.append(Finding(FAIL, "TWILIO_ACCOUNT_SID", "is missing"))
    if not config.TWILIO_AUTH_TOKEN:
        problems.append(Finding(FAIL, "TWILIO_AUTH_TOKEN", "is missing: Twilio signs its webhooks "
                                "with it, so every reply and status callback would be refused"))
    if bool(config.TWILIO_API_KEY_SID) != bool(config.TWILIO_API_KEY_SECRET):
        problems.append(Finding(FAIL, "TWILIO_API_KEY_SID", "and TWILIO_API_KEY_SECRET go together"))
    if not (config.TWILIO_FROM_NUMBER or config.TWILIO_MESSAGING_SERVICE_SID):
        problems.append(Finding(FAIL, "TWILIO_FROM_NUMBER",
                                "no sender: set it or TWILIO_MESSAGING_SERVICE_SID"))
    elif config.TWILIO_FROM_NUMBER:
        try:
            e164(config.TWILIO_FROM_NUMBER)
        except ValueError as exc:
            problems.append(Finding(FAIL, "TWILIO_FROM_NUMBER", str(exc)))
    yield from problems
    if config.TWILIO_FROM_NUMBER and config.TWILIO_MESSAGING_SERVICE_SID:
        yield Finding(WARN, "TWILIO_FROM_NUMBER", "is unused: the Messaging Service sends")
    if config.TWILIO_API_BASE_URL:
        yield Finding(WARN, "TWILIO_API_BASE_URL", f"texts go to {config.TWILIO_API_BASE_URL}, "
                                                   "not to api.twilio.com")
    if not problems:
        yield Finding(OK, "twilio", "settings look right; `aftercare send-test-sms NUMBER` sends one")


def _smtp(config: Config) -> Iterator[Finding]:
    if not config.SMTP_HOST:
        yield Finding(WARN, "smtp", "not configured: emails are printed by the worker, not sent")
        return
    if "@" not in parseaddr(config.SMTP_SENDER)[1]:
        yield Finding(FAIL, "SMTP_SENDER", f"{config.SMTP_SENDER!r} has no email address")
    where = f"{config.SMTP_HOST}:{config.SMTP_PORT}"
    try:
        SMTPEmail(config).connect().quit()
    except (smtplib.SMTPException, OSError) as exc:
        yield Finding(FAIL, "smtp", f"{where}: {exc!r}")
    else:
        login = ", login accepted" if config.SMTP_USER else ""
        yield Finding(OK, "smtp", f"{where} answers (TLS: {config.SMTP_TLS}{login})")


def _public_url(config: Config) -> Iterator[Finding]:
    url = config.PUBLIC_BASE_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        yield Finding(FAIL, "PUBLIC_BASE_URL", f"{url!r} is not an http(s) URL")
        return
    if parts.hostname in ("localhost", "127.0.0.1", "::1"):
        yield Finding(WARN, "PUBLIC_BASE_URL", "only this machine can reach it: Twilio cannot post "
                                               "replies, clients cannot open their links")
    elif parts.scheme != "https":
        yield Finding(FAIL, "PUBLIC_BASE_URL", "must be https: client links carry signed tokens")
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            response.read()
    except (OSError, ValueError) as exc:
        yield Finding(WARN, "public URL", f"{url}/healthz did not answer ({exc}): is the web app "
                                          "running and the proxy in front of it set up?")
    else:
        yield Finding(OK, "public URL", f"{url}/healthz answers; Twilio's inbound webhook is "
                                        f"{url}/webhooks/twilio/sms")


TEST_BODY = "Aftercare: this test message shows that the Twilio settings work. No reply needed."
TWILIO_HINTS = {
    "http-401": "Twilio refused the credentials: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
                "(or the API key)",
    "20003": "Twilio refused the credentials: check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
             "(or the API key)",
    "21211": "that is not a valid phone number",
    "21212": "TWILIO_FROM_NUMBER is not a number of this account",
    "21606": "TWILIO_FROM_NUMBER cannot send SMS (not this account's, or not SMS-capable)",
    "21608": "a trial account can only text numbers verified in the Twilio console",
    "21610": "this number texted STOP to your Twilio number: it must text START first",
    "21408": "texts to that country are off in the console's Messaging Geo Permissions",
    "21705": "TWILIO_MESSAGING_SERVICE_SID is not a Messaging Service of this account",
    "network": "api.twilio.com could not be reached: check outbound HTTPS from this host",
}


def send_test_sms(config: Config, number: str) -> str:
    """One text through the configured Twilio account, outside the outbox; returns its SID.
    A SendError says what Twilio answered and, for the usual mistakes, what to change."""
    if not config.sms_configured:
        raise SendError("Twilio is not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (or an "
                        "API key) and TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
    channel = TwilioSMS(config)

    async def send() -> str:
        try:
            return await channel.send(Outgoing(to=number, body=TEST_BODY))
        finally:
            await channel.close()

    try:
        return asyncio.run(send())
    except SendError as exc:
        hint = TWILIO_HINTS.get(exc.code or "")
        detail = f"{exc} (code {exc.code})" + (f": {hint}" if hint else "")
        raise SendError(detail, exc.code) from None

