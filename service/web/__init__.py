"""The web: the staff app, the client page, the JSON API and the provider webhooks."""

from flask import g, has_request_context, request

from service.care import audit
from service.care.schemas import LANGUAGES


def _request_address() -> str | None:
    return request.remote_addr if has_request_context() else None


audit.remote_addr_of = _request_address  # every audit row written in a request says from where


def use_browser_language() -> None:
    """Sets the page's language (g.locale, which Babel's locale selector reads): one a view
    already chose (a client's own), else the browser's Accept-Language among ours, else English.
    Staff pages and error pages both ask here. Returns None: it also runs as a before_request."""
    if not g.get("locale"):
        g.locale = request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]
