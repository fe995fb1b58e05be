"""Staff login and logout."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from service.web.auth import routes  # noqa: E402,F401
