"""The client's personal aftercare page: no login, a signed expiring link from their texts."""

from flask import Blueprint

bp = Blueprint("client_page", __name__, url_prefix="/c")

from service.web.client_page import routes  # noqa: E402,F401
