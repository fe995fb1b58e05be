"""Login protection that cannot be turned against staff (issue 15 items 5 and 8): a guesser slows
only itself, concurrent guesses get no more tries, an unknown email answers as slowly as a wrong
password, adding staff does not tell which emails other clinics use, and every `next` stays on
the site."""

import re
import statistics
import threading
import time

import pytest
import requests
from freezegun import freeze_time
from sqlmodel import Session, select
from werkzeug.serving import make_server

from service import create_app
from service.models import AuditEvent, Client, Escalation, StaffUser
from service.web.auth import routes as login_routes
from tests.conftest import make_clinic
from tests.helpers import NOW, enrol
from tests.web_helpers import PASSWORD, csrf_token, log_in, make_staff

ATTACKER, VICTIM = "203.0.113.7", "198.51.100.20"


@pytest.fixture
def clock():
    """The whole test at NOW, standing still: only tick() moves it."""
    with freeze_time(NOW) as frozen:
        yield frozen


@pytest.fixture
def owner(session, clinic):
    return make_staff(session, clinic[0], "owner@clinic.example", role="owner")


@pytest.fixture
def checks(monkeypatch):
    """How many passwords the login checked (argon2 verifications)."""
    calls, lock = [], threading.Lock()
    verify = login_routes.verify_password

    def counted(password_hash, password):
        with lock:
            calls.append(password_hash)
        return verify(password_hash, password)

    monkeypatch.setattr(login_routes, "verify_password", counted)
    return calls


def try_login(client, email, password="wrong password", address=ATTACKER, next_page=None):
    token = csrf_token(client.get("/login", environ_base={"REMOTE_ADDR": address}))
    url = "/login" if next_page is None else f"/login?next={next_page}"
    return client.post(url, data={"email": email, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def test_a_guesser_cannot_lock_out_the_staff_member_it_guesses(clock, app, owner):
    attacker, victim = app.test_client(), app.test_client()
    statuses = [try_login(attacker, owner.email).status_code for _ in range(12)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}  # the guesser is throttled
    assert try_login(victim, owner.email, PASSWORD, address=VICTIM).status_code == 302
    assert try_login(attacker, owner.email, PASSWORD).status_code == 429  # even the right one


def test_a_pair_waits_longer_after_each_failure(clock, client, owner, checks):
    for _ in range(5):
        assert try_login(client, owner.email).status_code == 401
    for wait in (2, 4, 8, 16):
        refused = try_login(client, owner.email)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == str(wait)
        clock.tick(wait - 1)
        assert try_login(client, owner.email).status_code == 429  # not yet
        clock.tick(1)
        assert try_login(client, owner.email).status_code == 401  # one more guess, checked
    assert len(checks) == 5 + 4  # refused tries check no password


def test_an_address_has_a_budget_across_emails(clock, client, owner, monkeypatch):
    monkeypatch.setattr(login_routes.throttle, "ADDRESS_BUDGET", 3)
    for n in range(3):
        assert try_login(client, f"guess{n}@clinic.example").status_code == 401
    assert try_login(client, "guess3@clinic.example").status_code == 429
    assert try_login(client, owner.email, PASSWORD, address=VICTIM).status_code == 302


def test_an_owner_lets_a_slowed_staff_member_in_at_once(clock, app, session, clinic, owner):
    lee = make_staff(session, clinic[0], "lee@clinic.example", role="clinician")
    shared = app.test_client()  # a guesser at the office's address slows Lee there too
    for _ in range(6):
        try_login(shared, lee.email)
    assert try_login(shared, lee.email, PASSWORD).status_code == 429
    boss = app.test_client()
    assert try_login(boss, owner.email, PASSWORD, address=VICTIM).status_code == 302
    other_clinic, _ = make_clinic(session, name="Elsewhere")
    stranger = make_staff(session, other_clinic, "stranger@elsewhere.example", role="clinician")
    token = csrf_token(boss.get("/settings"))
    assert boss.post(f"/settings/staff/{stranger.id}/clear-throttle",
                     data={"csrf_token": token}).status_code == 404  # only the owner's staff
    assert boss.post(f"/settings/staff/{lee.id}/clear-throttle",
                     data={"csrf_token": token}).status_code == 302
    assert try_login(shared, lee.email, PASSWORD).status_code == 302
    cleared = session.exec(select(AuditEvent).where(AuditEvent.action == "login_throttle_cleared")).one()
    assert cleared.actor == f"staff:{owner.id}"


def test_an_unknown_email_takes_as_long_as_a_wrong_password(real_password_hashing, client, session,
                                                            clinic):
    """Median of 20 each, taken in turns so that the machine's load weighs on both alike; each try
    from its own address and email, so that no throttle answers instead."""
    def post_time(email, address):
        form = {"email": email, "password": "wrong password",
                "csrf_token": csrf_token(client.get("/login"))}
        started = time.perf_counter()
        assert client.post("/login", data=form,
                           environ_base={"REMOTE_ADDR": address}).status_code == 401
        return time.perf_counter() - started

    staff = [make_staff(session, clinic[0], f"staff{n}@clinic.example").email for n in range(20)]
    wrong, unknown = zip(*((post_time(email, f"10.0.0.{n}"),
                            post_time(f"nobody{n}@clinic.example", f"10.0.1.{n}"))
                           for n, email in enumerate(staff)), strict=True)
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.75 < ratio < 1.25, (statistics.median(unknown), statistics.median(wrong))


@pytest.fixture
def live_server(settings):
    """The app behind a real threaded WSGI server, over plain HTTP (so cookies are not Secure)."""
    app = create_app({**settings, "PUBLIC_BASE_URL": "http://127.0.0.1"})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    app.extensions["aftercare.engine"].dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgresql"])
def test_thirty_concurrent_guesses_check_no_more_than_the_limit(live_server, checks):
    base, app = live_server
    with Session(app.extensions["aftercare.engine"]) as session:
        clinic, _ = make_clinic(session)
        email = make_staff(session, clinic, "owner@clinic.example").email
    browsers = [requests.Session() for _ in range(30)]
    tokens = [re.search(r'name="csrf_token"[^>]*value="([^"]+)"', b.get(f"{base}/login").text)[1]
              for b in browsers]
    start, statuses = threading.Barrier(30), []

    def guess(browser, token):
        start.wait()
        statuses.append(browser.post(f"{base}/login", data={
            "email": email, "password": "wrong password", "csrf_token": token}).status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(browsers, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == 30 and set(statuses) <= {401, 429}
    assert len(checks) <= 5 and statuses.count(401) == len(checks)


def test_adding_another_clinics_email_does_not_say_it_exists(clock, client, session, owner):
    other_clinic, _ = make_clinic(session, name="Elsewhere")
    theirs = make_staff(session, other_clinic, "taken@elsewhere.example", role="clinician")
    assert log_in(client, owner.email).status_code == 302

    def add(email):
        form = {"csrf_token": csrf_token(client.get("/settings")), "name": "Lee", "email": email,
                "password": "x" * 12}
        page = client.post("/settings/staff", data=form, follow_redirects=True)
        return page.get_data(as_text=True).split('class="flash">')[1].split("</")[0]

    assert add(theirs.email) == add("new@clinic.example")
    session.refresh(theirs)
    assert theirs.clinic_id == other_clinic.id
    assert len(session.exec(select(StaffUser).where(StaffUser.email == theirs.email)).all()) == 1


ELSEWHERE = ["https://elsewhere.example/", "//elsewhere.example/", "/\\elsewhere.example/",
             "https:elsewhere.example"]


@pytest.mark.parametrize("target", ELSEWHERE + ["/%09/elsewhere.example/"])  # a tab, in a URL
def test_login_next_stays_on_the_site(clock, client, owner, target):
    response = try_login(client, owner.email, PASSWORD, next_page=target)
    assert response.status_code == 302 and response.location == "/"


def test_login_next_on_the_site_is_kept(clock, client, owner):
    response = try_login(client, owner.email, PASSWORD, next_page="/settings")
    assert response.location == "/settings"


@pytest.mark.parametrize("target", ELSEWHERE + ["/\t/elsewhere.example/"])
def test_acknowledge_next_stays_on_the_site(clock, client, session, clinic, owner, target):
    enrol(client, clinic[1])
    person = session.exec(select(Client)).one()
    escalation = Escalation(clinic_id=clinic[0].id, client_id=person.id, severity="urgent",
                            reasons=["red flag: numbness"])
    session.add(escalation)
    session.commit()
    assert log_in(client, owner.email).status_code == 302
    response = client.post(f"/escalations/{escalation.id}/acknowledge",
                           data={"csrf_token": csrf_token(client.get("/")), "next": target})
    assert response.status_code == 302 and response.location == "/"
