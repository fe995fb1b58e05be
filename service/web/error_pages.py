"""What a person sees when a request fails: a page in their language that says what happened and
what to do next. Machines (/api, /webhooks) get JSON errors instead.

Unhandled exceptions reach the same handler as a 500 (Flask wraps them in InternalServerError).
The page touches no database, so a failing database cannot break it: it is rendered straight from
the Jinja environment, without the context processors (Flask-Login's loads the user from the
database) and without base.html's header, which asks for current_user.
"""

import math

import flask_babel
from flask import Flask, current_app, g, jsonify, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from service.web import use_browser_language
from service.web.schemas import ErrorOut

MACHINE_PREFIXES = ("/api/", "/webhooks/")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)


def http_error(exc: HTTPException):
    if request.path.startswith(MACHINE_PREFIXES):
        code = (exc.name or "error").lower().replace(" ", "_")
        return jsonify(ErrorOut(error=code, message=exc.description).model_dump(exclude_none=True)), exc.code
    if exc.code is None or exc.code < 400:
        return exc
    use_browser_language()
    language = g.locale
    flask_babel.refresh()  # the locale selector reads g.locale; this drops a locale chosen earlier
    for_client = request.path.startswith(_client_prefix())
    csrf = isinstance(exc, CSRFError)
    body = current_app.jinja_env.get_template("web/error.html").render(
        code=exc.code, csrf=csrf, for_client=for_client, page_language=language,
        retry_minutes=_retry_minutes(exc), request_id=g.get("request_id"),
        login_url=url_for("auth.login", next=_form_page()) if csrf else url_for("auth.login"),
        home_url=url_for("staff.dashboard"))
    # Keep what the error says in its headers (Allow for a 405, Retry-After for a 429).
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    return body, exc.code, headers


def _client_prefix() -> str:
    return current_app.blueprints["client_page"].url_prefix + "/"


def _retry_minutes(exc: HTTPException) -> int | None:
    """A 429's Retry-After (seconds), in the minutes the page asks the person to wait."""
    retry_after = getattr(exc, "retry_after", None)
    return math.ceil(retry_after / 60) if isinstance(retry_after, int) else None


def _form_page() -> str | None:
    """The page a refused form came from, so that logging in again leads back to it; None when
    its address cannot be opened (a POST-only action such as acknowledging an escalation) or is
    the login form itself."""
    try:
        endpoint, _ = current_app.url_map.bind_to_environ(request.environ).match(request.path,
                                                                                 method="GET")
    except HTTPException:  # 404, 405, or a redirect to another address
        return None
    return None if endpoint == "auth.login" else request.path
