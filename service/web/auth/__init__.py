"""Staff login and logout, and the one-time links (invitation, password reset)."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from service.web.auth import links, routes  # noqa: E402,F401
