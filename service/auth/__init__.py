"""Staff login and logout."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from service.auth import routes  # noqa: E402,F401
