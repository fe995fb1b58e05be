"""Browser tests: the app behind a real WSGI server on 127.0.0.1, driven by Playwright in Debian's
Chromium at phone size. Each test leaves screenshots under test-artifacts/."""

import threading
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from sqlmodel import Session
from werkzeug.serving import make_server

from service.config import ROOT
from tests.conftest import make_clinic, make_test_app
from tests.web_helpers import PASSWORD, make_staff

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="package")
def browser():
    """Package scope: Playwright's sync API keeps an event loop running in this thread while it
    lives, which other tests' asyncio.run() must not meet."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live(request, settings, page_bytecode):
    """The whole app on a real HTTP server; yields (base_url, app). A test (or module) that also
    asks for `providers` gets Twilio and SMTP pointing at the fakes."""
    if "providers" in request.fixturenames:  # the fakes' addresses must be in the settings first
        request.getfixturevalue("providers")
    app = make_test_app(dict(settings), page_bytecode)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.extensions["aftercare.config"].PUBLIC_BASE_URL = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base, app
    server.shutdown()
    app.extensions["aftercare.engine"].dispose()


@pytest.fixture
def db(live):
    with Session(live[1].extensions["aftercare.engine"], expire_on_commit=False) as session:
        yield session


@pytest.fixture
def owner(db):
    clinic, _ = make_clinic(db, name="Sunrise Back Walking")
    return make_staff(db, clinic, "owner@sunrise.example", role="owner")


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{request.node.name}-last.png", full_page=True)
    context.close()


def log_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
