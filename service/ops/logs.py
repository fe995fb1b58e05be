"""Structured logs: one JSON object per line, carrying the request's id.

Logs leave the service (journald, a log shipper), so they must never hold a message body or a
phone number in full. The code logs neither; as a safety net, a filter on the handler masks
anything that looks like a phone number in every record, whoever logged it (all but the last 3
digits), and the token of a client's page link (`/c/<redacted>`).
"""

import json
import logging
import logging.config
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

log = logging.getLogger(__name__)

_PHONE = re.compile(
    r"\+\d[\d ().-]{5,20}\d"  # E.164, perhaps spaced: +12025550123, +1 202-555-0123
    r"|(?<![\w.])\d{10,15}(?![\w.])"  # the same digits without the +
    r"|(?<!\w)\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\w)"  # US national: (202) 555-0123
)
# A client's page link is their credential: its token never reaches a log.
_CLIENT_LINK = re.compile(r"/c/[^/\s?#\"']+")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")  # a proxy's id is kept only if it is harmless
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
QUIET_BLUEPRINTS = ("health",)  # probes and scrapes every few seconds: logged only when failing


def _mask(match: re.Match) -> str:
    digits = re.sub(r"\D", "", match.group())
    return ("+" if match.group().startswith("+") else "") + "*" * (len(digits) - 3) + digits[-3:]


def mask_phones(text: str) -> str:
    return _PHONE.sub(_mask, redact_links(text))


def redact_links(text: str) -> str:
    return _CLIENT_LINK.sub("/c/<redacted>", text)


class MaskPhoneNumbers(logging.Filter):
    """Masks the message, its arguments, the traceback and every string passed in `extra`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_phones(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = mask_phones(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = mask_phones(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, key, mask_phones(value))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        entry |= {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def handler(stream=None) -> logging.Handler:
    result = logging.StreamHandler(stream or sys.stderr)
    result.setFormatter(JsonFormatter())
    result.addFilter(MaskPhoneNumbers())
    return result


def dict_config(level: str, stream=None) -> dict:
    """The whole logging setup, for configure() and for gunicorn's `logconfig_dict`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"json": {"()": handler, "stream": stream}},
        "root": {"level": level, "handlers": ["json"]},
        "loggers": {
            # Twilio's client logs every request at INFO, APScheduler every tick, Alembic each
            # plugin it loads.
            "twilio": {"level": "WARNING"},
            "apscheduler": {"level": "WARNING"},
            "alembic.runtime.plugins": {"level": "WARNING"},
            # gunicorn's own messages go through the JSON handler; its access log and the
            # development server's are replaced by the app's request log, which has the id.
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            "werkzeug": {"level": "WARNING"},
        },
    }


def configure(level: str, stream=None) -> None:
    logging.config.dictConfig(dict_config(level, stream))


def _start_request() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish_request(response):
    if "request_id" not in g:  # an earlier before_request answered first
        _start_request()
    response.headers["X-Request-ID"] = g.request_id
    if request.blueprint not in QUIET_BLUEPRINTS or response.status_code >= 400:
        # The path only (query strings can carry anything), without a client link's token.
        path = redact_links(request.path)
        log.info("%s %s %s", request.method, path, response.status_code, extra={
            "method": request.method, "path": path, "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 1),
        })
    return response


def init_app(app: Flask) -> None:
    app.before_request(_start_request)
    app.after_request(_finish_request)
