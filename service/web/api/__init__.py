"""The JSON API for clinic systems (booking software), authenticated by a Bearer API key."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# The scope (accounts.apikeys.SCOPES) each endpoint needs, by view name: the one table.
SCOPE_OF = {
    "create_visit": "enrol",
    "get_visit": "read",
    "get_client": "read",
    "client_checkins": "read",
    "client_escalations": "read",
    "client_audit": "audit",
    "acknowledge_escalation": "acknowledge",
}

from service.web.api import routes  # noqa: E402,F401  (registers the routes on bp)
