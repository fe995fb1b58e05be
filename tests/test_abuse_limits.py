"""Abuse limits (issue 14, item 6): numbers whose texts earn someone money or reach no one are
refused wherever a client's phone is accepted."""

import io
from datetime import UTC, datetime

import pytest
from freezegun import freeze_time
from sqlmodel import func, select

from service.care import client_import
from service.models import Client
from tests.conftest import auth
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
    with freeze_time(NOW, tick=True):
        yield


def enrol_body(phone: str) -> dict:
    return {"client": {"name": "Ana Ruiz", "phone": phone, "sms_consent": True}}


def enrol_form(client, phone: str):
    data = {"name": "Ana Ruiz", "phone": phone, "sms_consent": "on", "language": "en",
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
