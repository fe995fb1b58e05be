"""Staff login and logout, and the one-time links (invitation, password reset)."""

from flask import Blueprint

from service.web import use_browser_language

bp = Blueprint("auth", __name__)
bp.before_request(use_browser_language)  # the login and password pages in the browser's language

from service.web.auth import links, routes  # noqa: E402,F401
