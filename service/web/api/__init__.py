"""The JSON API for clinic systems (booking software), authenticated by a Bearer API key."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from service.web.api import routes  # noqa: E402,F401  (registers the routes on bp)
