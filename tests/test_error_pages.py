"""Error pages: people get a styled page in their language that says what happened and what to do
next, with the real HTTP status; /api and /webhooks keep their JSON errors."""

import re

import pytest
from flask import abort, g
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError

from service import db
from service.config import Config
from tests.web_helpers import csrf_token, log_in, make_staff

SPANISH = {"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"}


@pytest.fixture
def app(app):
    """Test-only routes for the statuses no real route raises on its own."""
    @app.get("/test-only/abort/<int:code>")
    def abort_with(code):
        abort(code)

    @app.get("/test-only/raise")
    def raise_an_error():
        raise RuntimeError("secret detail of a bug")

    @app.get("/api/v1/test-only/raise")
    def api_raise_an_error():
        raise RuntimeError("secret detail of a bug")

    @app.post("/c/test-only/expired-form")
    def client_form_with_a_stale_token():
        raise CSRFError("The CSRF token has expired.")

    @app.get("/test-only/client-page-in-spanish")
    def client_page_sets_the_locale():
        g.locale = "es"  # what the client page does for a Spanish-speaking client
        abort(404)

    return app


@pytest.fixture
def owner(session, clinic):
    return make_staff(session, clinic[0], "owner@clinic.example", role="owner")


def fail_logins(client, email, times=5):
    for _ in range(times):
        assert log_in(client, email, "wrong password").status_code == 401


def oversize(client):
    return client.post("/login", data={"email": "x" * Config().MAX_CONTENT_LENGTH})


def page_of(response) -> str:
    body = response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    assert 'data-testid="error-page"' in body and "/static/app.css" in body  # the styled page
    assert "Traceback" not in body and "secret detail" not in body
    return body


def lang(body: str) -> str:
    return re.search(r'<html lang="([a-z]+)"', body).group(1)


# code, how a person gets there, English heading, Spanish heading
CASES = [
    (400, lambda c: c.get("/test-only/abort/400"), "That did not work", "Eso no funcionó"),
    (403, "staff on /settings", "You cannot open this page", "No puede abrir esta página"),
    (404, lambda c: c.get("/no/such/page"), "We cannot find that page", "No encontramos esa página"),
    (404, lambda c: c.get("/c/"), "We cannot find that page", "No encontramos esa página"),
    (405, lambda c: c.get("/logout"), "This page cannot be opened this way",
     "Esta página no se puede abrir así"),
    (405, lambda c: c.get("/c/some-token/checkin"), "This page cannot be opened this way",
     "Esta página no se puede abrir así"),
    (410, lambda c: c.get("/test-only/abort/410"), "This page is no longer available",
     "Esta página ya no está disponible"),
    (413, oversize, "That was too large to send", "Eso es demasiado grande para enviarlo"),
    (429, "too many failed logins", "Too many tries", "Demasiados intentos"),
    (500, lambda c: c.get("/test-only/raise"), "Something went wrong on our side",
     "Algo salió mal de nuestro lado"),
]


@pytest.mark.parametrize("code, reach, english, spanish", CASES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(CASES)])
@pytest.mark.parametrize("headers, language", [({}, "en"), (SPANISH, "es")])
def test_each_error_has_a_styled_translated_page(app, client, session, clinic, owner, code, reach,
                                                 english, spanish, headers, language):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a 500 as in production, not raised into the test
    if reach == "staff on /settings":
        staff = make_staff(session, clinic[0], "staff@clinic.example", role="clinician")
        log_in(client, staff.email)
        reach = lambda c: c.get("/settings")  # noqa: E731
    elif reach == "too many failed logins":
        fail_logins(client, owner.email)
        reach = lambda c: log_in(c, owner.email)  # noqa: E731
    client.environ_base.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    response = reach(client)
    assert response.status_code == code
    body = page_of(response)
    assert lang(body) == language
    assert f"<h1>{english if language == 'en' else spanish}</h1>" in body


def test_a_language_the_pages_do_not_have_falls_back_to_english(client):
    body = page_of(client.get("/no/such/page", headers={"Accept-Language": "fr-FR,de;q=0.8"}))
    assert lang(body) == "en" and "We cannot find that page" in body


def test_the_client_page_s_language_wins_over_the_browser_s(client):
    response = client.get("/test-only/client-page-in-spanish", headers={"Accept-Language": "en"})
    assert response.status_code == 404 and lang(page_of(response)) == "es"


def test_a_client_page_address_tells_the_client_what_to_do_and_offers_no_staff_links(client):
    body = page_of(client.get("/c/some-token/checkin"))
    assert "open the link in your most recent text or email" in body
    assert "If your back feels worse, please call your clinic." in body
    assert 'href="/"' not in body and "/login" not in body


def test_a_staff_page_error_links_to_the_start_page(client):
    body = page_of(client.get("/no/such/page"))
    assert '<a class="button" href="/">Go to the start page</a>' in body
    assert "If you came here from a text or email" in body


def test_405_keeps_its_allow_header(client):
    response = client.get("/c/some-token/checkin")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]


def test_too_many_logins_says_how_long_to_wait_and_links_to_log_in(client, owner, monkeypatch):
    monkeypatch.setattr("service.web.auth.throttle.ADDRESS_BUDGET", 5)  # waits its 15 minutes
    fail_logins(client, owner.email)
    response = log_in(client, owner.email)
    body = page_of(response)
    assert response.status_code == 429 and 840 < int(response.headers["Retry-After"]) <= 900
    assert "Please wait 15 minutes, then try again." in body
    assert 'href="/login"' in body


def test_a_short_wait_is_one_minute_not_one_minutes(client, owner):
    """The pair throttle's first waits are seconds: the page rounds them up to one minute."""
    fail_logins(client, owner.email)  # the pair's free tries; the next one waits seconds
    body = page_of(log_in(client, owner.email, "wrong password"))
    assert "Please wait 1 minute, then try again." in body


def test_a_500_shows_the_request_reference_not_the_error(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/test-only/raise", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 500
    assert "tell us this reference: req-123" in page_of(response)


def test_a_500_page_renders_when_the_database_is_down(app, client, owner, monkeypatch):
    """Logged in, so anything that loads the user (base.html's current_user) would query."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    log_in(client, owner.email)

    def database_down():
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(db, "session", database_down)
    response = client.get("/")
    assert response.status_code == 500
    assert "Something went wrong on our side" in page_of(response)


@pytest.mark.parametrize("method, path, code, error", [
    ("GET", "/api/v1/no-such-thing", 404, "not_found"),
    ("GET", "/webhooks/no-such-thing", 404, "not_found"),
    ("GET", "/webhooks/twilio/sms", 405, "method_not_allowed"),
    ("GET", "/api/v1/test-only/raise", 500, "internal_server_error"),
])
def test_api_and_webhooks_keep_json_errors(app, client, method, path, code, error):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.open(path, method=method, headers=SPANISH)
    assert response.status_code == code
    assert response.get_json()["error"] == error


# --- an expired form (CSRF) ----------------------------------------------------------------------

def restart_browser(client):
    """The session cookie lives until the browser closes; a restored tab still holds the form."""
    client.delete_cookie("session")


def test_an_expired_staff_form_says_so_and_leads_back_to_it_after_logging_in(client, owner):
    log_in(client, owner.email)
    token = csrf_token(client.get("/visits/new"))
    restart_browser(client)
    response = client.post("/visits/new", data={"name": "Ana Ruiz", "csrf_token": token})
    assert response.status_code == 400
    body = page_of(response)
    assert "<h1>This form has expired</h1>" in body and "what you sent was not saved" in body
    link = re.search(r'<a class="button" href="([^"]+)">Log in again</a>', body).group(1)
    assert link == "/login?next=/visits/new"
    login_page = client.get(link)
    response = client.post(link, data={"email": owner.email, "password": "correct horse battery",
                                       "csrf_token": csrf_token(login_page)})
    assert response.status_code == 302 and response.headers["Location"] == "/visits/new"


def test_an_expired_form_in_spanish(client, owner):
    log_in(client, owner.email)
    token = csrf_token(client.get("/"))
    restart_browser(client)
    body = page_of(client.post("/logout", data={"csrf_token": token}, headers=SPANISH))
    assert lang(body) == "es" and "Este formulario ha caducado" in body


def test_an_expired_form_for_an_action_links_to_log_in_without_coming_back_to_it(client, owner):
    """Acknowledging an escalation is POST-only: coming back to its address would be a 405."""
    response = client.post("/escalations/1/acknowledge", data={"csrf_token": "stale"})
    assert response.status_code == 400
    assert '<a class="button" href="/login">Log in again</a>' in page_of(response)


def test_an_expired_login_form_links_to_the_login_page_alone(client, owner):
    response = client.post("/login", data={"email": owner.email, "password": "x"})
    assert response.status_code == 400
    assert '<a class="button" href="/login">Log in again</a>' in page_of(response)


def test_an_expired_form_on_a_client_page_says_the_answer_was_not_saved(client):
    response = client.post("/c/test-only/expired-form", data={"answer": "worse"})
    assert response.status_code == 400
    body = page_of(response)
    assert "<h1>This page has expired</h1>" in body and "Your answer was not saved." in body
    assert "If your back feels worse, please call your clinic." in body and "/login" not in body


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example",
                                    "javascript:alert(1)"])
def test_login_goes_back_only_to_a_page_of_this_site(client, owner, target):
    page = client.get("/login", query_string={"next": target})
    response = client.post("/login", query_string={"next": target},
                           data={"email": owner.email, "password": "correct horse battery",
                                 "csrf_token": csrf_token(page)})
    assert response.headers["Location"] == "/"
