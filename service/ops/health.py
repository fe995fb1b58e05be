"""Operations endpoints: liveness for process managers, readiness for deploys and monitoring,
Prometheus metrics (see metrics.py and collector.py)."""

import hmac
from datetime import timedelta

from flask import Blueprint, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from service.models import utcnow
from service.ops import collector, readiness

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process answers; nothing else is checked (a database outage must not restart it)."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    config = current_app.extensions["aftercare.config"]
    ready = readiness.check(current_app.extensions["aftercare.engine"], utcnow(),
                            timedelta(seconds=config.HEARTBEAT_STALE_SECONDS),
                            timedelta(seconds=config.READY_MAX_DUE_AGE_SECONDS))
    body = {"checks": ready.checks, "oldest_due_seconds": ready.oldest_due_seconds}
    if ready.failed:
        return {"status": "unready", "failed": ready.failed, **body}, 503
    return {"status": "ready", **body}


@bp.get("/metrics")
def prometheus_metrics():
    config = current_app.extensions["aftercare.config"]
    if config.METRICS_TOKEN:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), config.METRICS_TOKEN):
            abort(401)
    body = collector.web_exposition(current_app.extensions["aftercare.engine"],
                                  timedelta(seconds=config.HEARTBEAT_STALE_SECONDS))
    return body, 200, {"Content-Type": CONTENT_TYPE_LATEST}
