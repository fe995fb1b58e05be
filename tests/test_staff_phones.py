"""Staff pages show every phone number as a tap-to-call link, in the clinic's region's national
format ("(202) 555-0123" for a US clinic) and a foreign number in its international format."""

import pytest

from service.models import Client, Escalation
from tests.web_helpers import log_in, make_staff

ANA = '<a href="tel:+12025550123">(202) 555-0123</a>'
LUCIA = '<a href="tel:+34612345678">+34 612 34 56 78</a>'  # a Spanish mobile, read from the US


@pytest.fixture
def logged_in(client, session, clinic):
    log_in(client, make_staff(session, clinic[0], "owner@clinic.example", role="owner").email)
    return client


@pytest.fixture
def clients(session, clinic):
    rows = [Client(clinic_id=clinic[0].id, name=name, phone=phone, time_zone="America/New_York")
            for name, phone in (("Ana Ruiz", "+12025550123"), ("Lucía Gil", "+34612345678"))]
    session.add_all(rows)
    session.commit()
    session.add_all([Escalation(clinic_id=clinic[0].id, client_id=row.id, severity="concern",
                                reasons=["worse"]) for row in rows])
    session.commit()
    return rows


def test_the_dashboard_s_escalations_have_tap_to_call_numbers(logged_in, clients):
    """The number is the visible text (it fits a 320 px row); a screen reader hears whom."""
    page = logged_in.get("/").get_data(as_text=True)
    assert ANA.replace("<a ", '<a aria-label="Call Ana Ruiz, (202) 555-0123" ') in page
    assert LUCIA.replace("<a ", '<a aria-label="Call Lucía Gil, +34 612 34 56 78" ') in page


def test_the_client_page_has_a_tap_to_call_number(logged_in, clients):
    assert ANA in logged_in.get(f"/clients/{clients[0].id}").get_data(as_text=True)
    assert LUCIA in logged_in.get(f"/clients/{clients[1].id}").get_data(as_text=True)


def test_settings_show_the_saved_on_call_phones_as_tap_to_call(logged_in):
    page = logged_in.get("/settings").get_data(as_text=True)
    assert '<a href="tel:+12025550101">(202) 555-0101</a>' in page
    assert ">+12025550101</textarea>" in page  # edited as stored, in E.164
