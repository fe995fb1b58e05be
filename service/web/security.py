"""Security headers on every response: a CSP without inline scripts, no framing, no referrer
(the client page's URL carries its signed token), no caching of what carries personal data, HSTS
when served over HTTPS. And local_path, the one check of every `next` a page is given."""

from urllib.parse import urlsplit

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def add_headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    # Staff pages, the client's page, exports and API answers hold personal data: no cache keeps
    # them (a shared proxy, the back button of a clinic's tablet). Static files set their own.
    response.headers.setdefault("Cache-Control", "no-store")
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def local_path(target: str | None) -> str | None:
    """Where to go next (the page that asked), if it is a path on this site: anything else would
    make the form an open redirect. Browsers read a backslash as a slash and drop tabs and
    newlines, so "//elsewhere", "/\\elsewhere" and "/", a tab, "/elsewhere" all leave the site."""
    if (target and target.startswith("/") and not urlsplit(target).netloc
            and not any(c == "\\" or c.isspace() or not c.isprintable() for c in target)):
        return target
    return None


class JSONProvider(DefaultJSONProvider):
    """JSON nested deeper than Python's stack is a bad body, as unreadable JSON is: ValueError,
    so that request.get_json() answers 400 (or None when silent) rather than a RecursionError's
    500."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def init_app(app: Flask) -> None:
    app.json = JSONProvider(app)
    app.after_request(add_headers)
