"""Abuse limits (issue 14, item 6): numbers whose texts earn someone money or reach no one are
refused wherever a client's phone is accepted; an API key past its requests a minute gets 429."""

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import func, select

from service import create_app
from service.care import client_import
from service.models import ApiKey, Client
from tests.conftest import BOTH_BACKENDS, auth, make_clinic
from tests.web_helpers import csrf_token, log_in, make_staff

NOW = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # 10:00 in New York

REFUSED = [
    ("+1 900 555 0123", "premium-rate numbers cannot receive aftercare texts"),
    ("+882 16 1234 5678", "satellite and international-network numbers cannot receive"),
    ("+881 6 1234 5678", "satellite and international-network numbers cannot receive"),
    # UK 0871: a service number (the caller pays a charge on top); phonenumbers files it as
    # premium-rate, as Ofcom does for 087.
    ("+44 871 234 5678", "premium-rate numbers cannot receive aftercare texts"),
    ("+34 901 123 456", "shared-cost numbers cannot receive aftercare texts"),
    ("+44 55 1234 5678", "universal access (UAN) numbers cannot receive aftercare texts"),
]
ACCEPTED = [("+44 7911 123456", "+447911123456"),  # a UK mobile
            ("(202) 555-0142", "+12025550142")]   # a US number, fixed line or mobile


@pytest.fixture(autouse=True)
def clock():
    with freeze_time(NOW) as frozen:
        yield frozen


def enrol_body(phone: str) -> dict:
    return {"client": {"name": "Ana Ruiz", "phone": phone, "sms_consent": True}}


def enrol_form(client, phone: str):
    data = {"name": "Ana Ruiz", "phone": phone, "sms_consent": "on", "language": "en", "none_apply": "on",
            "csrf_token": csrf_token(client.get("/visits/new"))}
    return client.post("/visits/new", data=data)


@pytest.fixture
def logged_in(client, clinic, session):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    assert log_in(client, owner.email).status_code == 302
    return client


@pytest.mark.parametrize(("phone", "reason"), REFUSED)
def test_the_api_refuses_a_number_that_cannot_take_our_texts(client, clinic, session, phone,
                                                            reason):
    response = client.post("/api/v1/visits", json=enrol_body(phone), headers=auth(clinic[1]))
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "validation_failed"
    assert body["fields"]["client.phone"].startswith(reason)
    assert session.exec(select(func.count()).select_from(Client)).one() == 0


@pytest.mark.parametrize(("phone", "reason"), REFUSED)
def test_the_staff_form_refuses_it_with_the_reason(logged_in, session, phone, reason):
    response = enrol_form(logged_in, phone)
    assert response.status_code == 422
    assert reason in response.get_data(as_text=True)
    assert session.exec(select(func.count()).select_from(Client)).one() == 0


def test_the_client_import_refuses_it_on_its_line():
    rows, problems = client_import.read(io.StringIO(
        "name,phone,sms_consent\nAna,+19005550123,true\nBo,+447911123456,true\n"))
    assert [row.client.phone for row in rows] == ["+447911123456"]
    assert [str(p) for p in problems] == [
        "line 2: phone: premium-rate numbers cannot receive aftercare texts"]


@pytest.mark.parametrize(("phone", "stored"), ACCEPTED)
def test_a_mobile_or_ordinary_number_is_still_accepted(client, clinic, logged_in, session, phone,
                                                        stored):
    response = client.post("/api/v1/visits", json=enrol_body(phone), headers=auth(clinic[1]))
    assert response.status_code == 201
    assert response.get_json()["client"]["phone"] == stored
    assert enrol_form(logged_in, phone).status_code == 302


# --- the request rate of an API key ---------------------------------------------------------------

RATE = 3


@pytest.fixture
def settings(settings):
    settings["API_RATE_PER_MINUTE"] = RATE
    return settings


def read(web, key):
    """A cheap authenticated request: a client that does not exist (404 once admitted)."""
    return web.get("/api/v1/clients/999", headers=auth(key))


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_key_past_its_rate_gets_429_until_the_next_minute(client, clinic, session, clock):
    _, key = clinic
    clock.move_to(NOW + timedelta(seconds=15))
    assert [read(client, key).status_code for _ in range(RATE)] == [404] * RATE
    clock.move_to(NOW + timedelta(seconds=20))
    refused = read(client, key)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "40"  # the next minute starts at 14:01:00
    assert refused.get_json() == {
        "error": "rate_limited",
        "message": f"more than {RATE} requests a minute with this key: retry in 40 s"}
    # Refused requests do nothing: an enrolment is not written.
    visit = client.post("/api/v1/visits", json=enrol_body("+12025550142"), headers=auth(key))
    assert visit.status_code == 429
    assert session.exec(select(func.count()).select_from(Client)).one() == 0
    clock.move_to(NOW + timedelta(minutes=1))
    assert read(client, key).status_code == 404


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_another_clinics_key_is_not_affected(client, clinic, session):
    _, other_key = make_clinic(session, name="Other Clinic")
    for _ in range(RATE + 2):
        read(client, clinic[1])
    assert read(client, clinic[1]).status_code == 429
    assert [read(client, other_key).status_code for _ in range(RATE)] == [404] * RATE


def test_an_unknown_or_wrong_key_is_401_and_uses_up_nothing(client, clinic, session):
    _, key = clinic
    wrong = key[:12] + "x" * (len(key) - 12)  # the right prefix (staff see it), the wrong key
    assert [read(client, wrong).status_code for _ in range(RATE + 1)] == [401] * (RATE + 1)
    assert [read(client, key).status_code for _ in range(RATE)] == [404] * RATE


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_count_holds_across_web_processes_and_concurrent_requests(app, settings, clinic,
                                                                       session):
    """Two apps (as two gunicorn workers: each its own engine and pool) and 4 threads each, all
    with one key: exactly RATE requests are admitted, whatever the interleaving."""
    rate = 20
    apps = [app, create_app({**settings, "TESTING": True})]
    for each in apps:
        each.config["API_RATE_PER_MINUTE"] = rate
    clients = [each.test_client() for each in apps]
    try:
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda n: read(clients[n % 2], clinic[1]).status_code,
                                  range(3 * rate)))
    finally:
        apps[1].extensions["aftercare.engine"].dispose()
    assert sorted(codes) == [404] * rate + [429] * (2 * rate)
    assert session.exec(select(ApiKey.window_count)).one() == 3 * rate
