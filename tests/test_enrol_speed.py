"""Issue 16 item 5: enrolment in seconds. Errors in plain words next to their fields, all at once,
tied to them for a screen reader, the first focused; pain as 0-10 buttons; appointment presets; a
returning client's details and consent carried over. The taps are counted in
tests/browser/test_enrol_taps.py."""

import re
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from service.models import Appointment, AuditEvent, Client, Visit, utcnow
from tests.conftest import make_clinic
from tests.web_helpers import csrf_token, log_in, make_staff

pytestmark = pytest.mark.usefixtures("daytime")





@pytest.fixture
def web(client, session, clinic):
    assert log_in(client, make_staff(session, clinic[0], "desk@clinic.example",
                                     role="front_desk").email).status_code == 302
    return client


def post(web, **fields):
    token = csrf_token(web.get("/visits/new"))
    data = {"name": "Ana Ruiz", "phone": "(202) 555-0123", "sms_consent": "on", "language": "en",
            "none_apply": "on", "csrf_token": token} | fields
    return web.post("/visits/new", data=data)


def error_of(page: str, field: str) -> str | None:
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return found and found.group(1)


def tag(page: str, element_id: str) -> str:
    return re.search(rf'<(?:input|select)[^>]*\bid="{element_id}"[^>]*>', page).group(0)


def test_every_error_at_once_in_plain_words_next_to_its_field(web, session):
    response = post(web, name=" ", phone="12", email="ana@", pain_before="11", pain_after="-1")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert error_of(page, "name") == "Enter the client&#39;s name"
    assert error_of(page, "phone") == "Enter a phone number we can text, like (201) 555-0123"
    assert error_of(page, "email") == "Enter an email address, like name@example.com"
    assert error_of(page, "pain_before") == error_of(page, "pain_after") == "Choose a number from 0 to 10"
    assert "should have" not in page and "Value error" not in page
    for field in ("name", "phone", "email"):
        assert 'aria-invalid="true"' in tag(page, field)
        assert f'aria-describedby="{field}-error' in tag(page, field)
    assert 'aria-invalid="true"' in tag(page, "pain_before-6")
    assert 'aria-describedby="pain_before-error"' in page
    # The first field to fix has the focus, with no script; only it.
    assert page.count(" autofocus") == 1 and "autofocus" in tag(page, "name")
    assert 'aria-invalid' not in tag(page, "language")
    assert session.exec(select(Visit)).all() == []


def test_the_first_invalid_field_has_the_focus(web):
    page = post(web, phone="", sms_consent="").get_data(as_text=True)
    assert error_of(page, "channels") == ("Enter a phone number the client agreed to get texts "
                                          "on, or an email")
    assert "autofocus" in tag(page, "phone") and page.count(" autofocus") == 1
    assert 'aria-describedby="channels-error"' in tag(page, "email")

    page = post(web, pain_after="12").get_data(as_text=True)
    assert "autofocus" in tag(page, "pain_after-0") and page.count(" autofocus") == 1
    assert "aria-invalid" not in tag(page, "name")

    page = post(web, next_appointment="2026-06-01T10:00").get_data(as_text=True)
    assert error_of(page, "next_appointment") == "Choose a time after this session"
    assert "autofocus" in tag(page, "next_appointment")


def test_the_checklist_s_error_is_tied_to_its_boxes_and_focused(web):
    page = post(web, none_apply="").get_data(as_text=True)
    assert error_of(page, "contraindication")
    boxes = re.findall(r'<input type="checkbox" name="(?:contraindication|none_apply)"[^>]*>', page)
    assert len(boxes) > 2
    for box in boxes:
        assert 'aria-invalid="true"' in box and 'aria-describedby="contraindication-error"' in box
    assert "autofocus" in boxes[0] and page.count(" autofocus") == 1


def test_a_cross_field_rule_is_shown_with_the_field_errors(web):
    """Checked on the rest of the form when it holds together without the failed fields."""
    page = post(web, pain_before="11", next_appointment="2026-06-01T10:00").get_data(as_text=True)
    assert error_of(page, "pain_before") == "Choose a number from 0 to 10"
    assert error_of(page, "next_appointment") == "Choose a time after this session"
    assert page.count(" autofocus") == 1 and "autofocus" in tag(page, "pain_before-0")
    page = post(web, phone="12", rebook_weeks="2",
                next_appointment="2026-06-20T10:00").get_data(as_text=True)
    assert error_of(page, "phone") and error_of(page, "rebook_weeks") == (
        "Choose a next appointment or a rebooking reminder, not both")
    assert error_of(page, "channels") is None  # the bad number left out is not "no number"


def test_pain_is_a_row_of_0_to_10_buttons(web, session):
    page = web.get("/visits/new").get_data(as_text=True)
    for name in ("pain_before", "pain_after"):
        values = re.findall(rf'<input type="radio" name="{name}" id="{name}-\d+" value="(\d+)"', page)
        assert values == [str(n) for n in range(11)]
        assert 'type="number"' not in page
    assert post(web, pain_before="7", pain_after="0").status_code == 302
    visit = session.exec(select(Visit)).one()
    assert (visit.pain_before, visit.pain_after) == (7, 0)


def test_appointment_presets_one_two_three_weeks_at_this_time_of_day(web, session):
    page = web.get("/visits/new").get_data(as_text=True)
    presets = re.findall(r'name="appointment_preset" id="preset-(\d)" value="([^"]+)"', page)
    # 10:07 in New York: the quarter hour before, on the same weekday 1, 2, 3 weeks on.
    assert presets == [("1", "2026-06-17T10:00"), ("2", "2026-06-24T10:00"),
                       ("3", "2026-07-01T10:00")]
    assert post(web, appointment_preset="2026-06-24T10:00").status_code == 302
    booked = session.exec(select(Appointment)).one()
    assert booked.starts_at.replace(tzinfo=UTC) == datetime(2026, 6, 24, 14, 0, tzinfo=UTC)


def test_a_typed_appointment_wins_over_a_preset(web, session):
    assert post(web, appointment_preset="2026-06-24T10:00",
                next_appointment="2026-06-19T16:30").status_code == 302
    booked = session.exec(select(Appointment)).one()
    assert booked.starts_at.replace(tzinfo=UTC) == datetime(2026, 6, 19, 20, 30, tzinfo=UTC)


def test_a_preset_survives_another_fields_error(web):
    page = post(web, name="", appointment_preset="2026-06-17T10:00").get_data(as_text=True)
    assert re.search(r'id="preset-1" value="2026-06-17T10:00" checked', page)
    assert 'value="2026-06-17T10:00"' in tag(page, "next_appointment")


@pytest.fixture
def ana(session, clinic):
    ana = Client(clinic_id=clinic[0].id, name="Ana Ruiz", phone="+12025550123",
                 email="ana@example.com", language="es", time_zone="America/New_York",
                 sms_consent_at=utcnow())
    session.add(ana)
    session.commit()
    return ana


def test_a_returning_client_is_carried_over_and_enrolled_without_retyping(web, session, ana):
    page = web.get(f"/visits/new?client={ana.id}").get_data(as_text=True)
    carried = {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', page).group(1)
               for name in ("name", "phone", "email")}
    assert carried == {"name": "Ana Ruiz", "phone": "+12025550123", "email": "ana@example.com"}
    assert re.search(r'<option value="es" selected', page)
    assert "checked" in tag(page, "sms_consent")
    viewed = session.exec(select(AuditEvent).where(AuditEvent.action == "client_viewed")).one()
    assert (viewed.client_id, viewed.detail) == (ana.id, {"on": "enrol_form"})

    # The form as carried, plus the taps: pain and a preset.
    response = web.post("/visits/new", data=carried | {
        "language": "es", "sms_consent": "on", "none_apply": "on", "pain_before": "5", "pain_after": "2",
        "appointment_preset": "2026-06-17T10:00", "csrf_token": csrf_token(web.get("/visits/new"))})
    assert response.status_code == 302
    session.expire_all()
    assert session.exec(select(Client)).all() == [ana]
    visit = session.exec(select(Visit)).one()
    assert visit.client_id == ana.id and session.get(Client, ana.id).sms_consent_at is not None


def test_withdrawn_consent_is_not_carried_over(web, session, ana):
    ana.sms_opted_out_at = utcnow()
    session.add(ana)
    session.commit()
    assert "checked" not in tag(web.get(f"/visits/new?client={ana.id}").get_data(as_text=True),
                                "sms_consent")
    found = web.post("/clients/search", json={"q": "Ana"},
                     headers={"X-CSRFToken": csrf_token(web.get("/visits/new"))}).get_json()
    assert [(c["id"], c["sms_consent"]) for c in found] == [(ana.id, False)]


def test_the_lookup_carries_consent(web, session, ana):
    found = web.post("/clients/search", json={"q": "555-0123"},
                     headers={"X-CSRFToken": csrf_token(web.get("/visits/new"))}).get_json()
    assert found == [{"id": ana.id, "name": "Ana Ruiz", "phone": "+12025550123",
                      "email": "ana@example.com", "language": "es", "sms_consent": True}]


def test_another_clinics_client_is_not_carried_over(web, session):
    other, _ = make_clinic(session, name="Other Clinic")
    theirs = Client(clinic_id=other.id, name="Bea", phone="+12025550199",
                    time_zone="America/New_York", sms_consent_at=utcnow())
    session.add(theirs)
    session.commit()
    assert web.get(f"/visits/new?client={theirs.id}").status_code == 404


def test_a_number_we_never_text_says_why(web):
    page = post(web, phone="+1 900 555 0123").get_data(as_text=True)
    assert error_of(page, "phone") == ("We cannot text this number (premium-rate numbers cannot "
                                       "receive aftercare texts). Enter a mobile number, like "
                                       "(201) 555-0123")
