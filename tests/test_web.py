"""The staff app and the client page through HTTP: accounts, CSRF, rate limit, tenant isolation,
enrolment, the client's signed link."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import select

from service.messaging.links import client_page_url
from service.models import (
    Appointment,
    CheckIn,
    Client,
    Escalation,
    Message,
    StaffUser,
    Visit,
)
from tests.conftest import make_clinic
from tests.web_helpers import csrf_token, log_in, make_staff

NOW = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # 10:00 in New York


@pytest.fixture(autouse=True)
def clock():
    """The whole test at NOW: signed session cookies must not be from the future."""
    with freeze_time(NOW, tick=True) as frozen:
        yield frozen


@pytest.fixture
def owner(session, clinic):
    return make_staff(session, clinic[0], "owner@clinic.example", role="owner")


@pytest.fixture
def logged_in(client, owner):
    assert log_in(client, owner.email).status_code == 302
    return client


def enrol_form(client, **fields):
    token = csrf_token(client.get("/visits/new"))
    data = {"name": "Ana Ruiz", "phone": "(202) 555-0123", "email": "ana@example.com",
            "sms_consent": "on", "language": "en", "pain_before": "6", "pain_after": "3",
            "first_visit": "on", "none_apply": "on", "csrf_token": token} | fields
    return client.post("/visits/new", data=data)


def test_wrong_password_gives_no_session(client, owner):
    response = log_in(client, owner.email, "wrong password")
    assert response.status_code == 401
    assert "do not match" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still sent to the login page


def test_login_is_rate_limited_after_repeated_failures(client, owner, clock):
    for _ in range(5):
        assert log_in(client, owner.email, "nope").status_code == 401
    assert log_in(client, owner.email).status_code == 429  # even the right password, for now
    clock.move_to(NOW + timedelta(minutes=16))
    assert log_in(client, owner.email).status_code == 302


def test_a_post_without_csrf_token_is_400(logged_in):
    response = logged_in.post("/visits/new", data={"name": "Ana", "sms_consent": "on"})
    assert response.status_code == 400


def test_logout_needs_csrf_and_ends_the_session(logged_in):
    assert logged_in.post("/logout").status_code == 400
    token = csrf_token(logged_in.get("/"))
    assert logged_in.post("/logout", data={"csrf_token": token}).status_code == 302
    assert logged_in.get("/").status_code == 302


def test_enrol_shows_the_planned_timeline(logged_in, session):
    response = enrol_form(logged_in)
    assert response.status_code == 302
    page = logged_in.get(response.location).get_data(as_text=True)
    assert "Aftercare planned for" in page and "24-hour care window" in page
    assert "Wed 10 Jun, 10:00" in page  # local time, not UTC
    visit = session.exec(select(Visit)).one()
    assert visit.visit_number == 1
    assert session.exec(select(Client)).one().phone == "+12025550123"


def test_enrol_errors_name_the_field_and_keep_the_input(logged_in, session):
    response = enrol_form(logged_in, phone="12", sms_consent="")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="phone-error"' in page and 'value="Ana Ruiz"' in page
    assert session.exec(select(Visit)).all() == []


def test_search_finds_clients_of_my_clinic_only(logged_in, session):
    enrol_form(logged_in)
    other, _ = make_clinic(session, name="Other")
    session.add(Client(clinic_id=other.id, name="Ana Other", phone="+12025550999",
                       time_zone="UTC"))
    session.commit()
    headers = {"X-CSRFToken": csrf_token(logged_in.get("/visits/new"))}

    def search(q):
        return logged_in.post("/clients/search", json={"q": q}, headers=headers).get_json()

    assert [c["name"] for c in search("ana")] == ["Ana Ruiz"]
    assert search("555-0123")[0]["name"] == "Ana Ruiz"
    assert logged_in.post("/clients/search", json={"q": "ana"}).status_code == 400  # no CSRF


def test_the_dashboard_flags_an_escalation_unanswered_once_every_reminder_went(logged_in, session,
                                                                              clinic):
    enrol_form(logged_in)
    client_row = session.exec(select(Client)).one()
    escalation = Escalation(clinic_id=clinic[0].id, client_id=client_row.id, severity="concern",
                            reasons=["said worse"], notify_count=2)  # the clinic re-sends 3 times
    session.add(escalation)
    session.commit()
    flag = 'data-testid="unanswered"'  # on the escalation's row (the counts say "unanswered" too)
    assert flag not in logged_in.get("/").get_data(as_text=True)
    escalation.notify_count = 3
    session.add(escalation)
    session.commit()
    assert flag in logged_in.get("/").get_data(as_text=True)


def test_acknowledge_from_the_dashboard(logged_in, session, clinic):
    enrol_form(logged_in)
    client_row = session.exec(select(Client)).one()
    session.add(Escalation(clinic_id=clinic[0].id, client_id=client_row.id, severity="urgent",
                           reasons=["red flag: numbness"]))
    session.commit()
    page = logged_in.get("/")
    assert "red flag: numbness" in page.get_data(as_text=True)
    escalation = session.exec(select(Escalation)).one()
    logged_in.post(f"/escalations/{escalation.id}/acknowledge",
                   data={"note": "Called, going to ER", "csrf_token": csrf_token(page)})
    session.expire_all()
    acknowledged = session.exec(select(Escalation)).one()
    assert (acknowledged.status, acknowledged.ack_note) == ("acknowledged", "Called, going to ER")


def test_settings_are_for_owners_and_validate_every_field(client, session, clinic):
    staff = make_staff(session, clinic[0], "staff@clinic.example", role="clinician")
    log_in(client, staff.email)
    assert client.get("/settings").status_code == 403


def test_settings_save(logged_in, session, clinic):
    page = logged_in.get("/settings")
    data = {"csrf_token": csrf_token(page), "time_zone": "America/Chicago",
            "quiet_start": "20:30", "quiet_end": "07:30", "on_call_phones": "(202) 555-0177",
            "on_call_emails": "nurse@clinic.example", "renotify_minutes": "15",
            "renotify_max": "4", "weekly_visits": "2", "maintenance_weeks": "4",
            "hydration_after": "2", "heat_after": "5", "checkin_after": "24",
            "followup_after": "72", "reminder_before": "24", "kind_window_start": "on",
            "kind_checkin": "on", "idle_timeout_minutes": "30",
            "section": ["clinic", "on_call", "plan", "security"], "name": "Sunrise",
            "phone": "(202) 555-0100"}
    assert logged_in.post("/settings", data=data).status_code == 302
    session.expire_all()
    saved = session.get(type(clinic[0]), clinic[0].id)
    assert saved.on_call_phones == ["+12025550177"] and saved.maintenance_weeks == 4
    assert saved.plan_settings().enabled_kinds == {"window_start", "checkin"}
    bad = logged_in.post("/settings", data=data | {"maintenance_weeks": "9", "on_call_phones": "x"})
    assert bad.status_code == 422
    assert "between 1 and 6" in bad.get_data(as_text=True)


def test_an_owner_adds_staff_with_a_password_of_12_characters_or_more(logged_in, session):
    """The policy of `aftercare create-user` (service/accounts/passwords.py): 11 is refused."""
    page = logged_in.get("/settings")
    assert "Password (12+ characters)" in page.get_data(as_text=True)

    def add(email: str, password: str):
        form = {"csrf_token": csrf_token(page), "name": "Lee", "email": email, "password": password}
        return logged_in.post("/settings/staff", data=form, follow_redirects=True)

    refused = add("short@clinic.example", "x" * 11)
    assert "a password of at least 12 characters are needed" in refused.get_data(as_text=True)
    assert add("lee@clinic.example", "x" * 12).status_code == 200
    emails = {user.email for user in session.exec(select(StaffUser))}
    assert "lee@clinic.example" in emails and "short@clinic.example" not in emails


def test_api_key_is_shown_once_and_works(logged_in, session):
    page = logged_in.get("/settings")
    response = logged_in.post("/settings/api-keys",
                              data={"csrf_token": csrf_token(page), "name": "booking",
                                    "scope": ["enrol", "read"]})
    key = response.get_data(as_text=True).split('data-testid="new-key">')[1].split("<")[0]
    assert logged_in.get("/api/v1/visits/1", headers={"Authorization": f"Bearer {key}"}
                         ).status_code == 404  # authenticated; no such visit
    assert key not in logged_in.get("/settings").get_data(as_text=True)


# Tenant isolation (every staff and API route, as another clinic): tests/test_tenancy.py.


# --- the client's page ---------------------------------------------------------------------------

@pytest.fixture
def client_link(app, logged_in, session):
    enrol_form(logged_in, next_appointment="2026-06-17T15:30")
    client_row = session.exec(select(Client)).one()
    return client_page_url(app.extensions["aftercare.config"], client_row.id,
                           client_row.link_version).split("/c/")[1]


def form_token(response) -> str:
    """The first form's token on the client's page (the check-in): bound to the link, no cookie."""
    match = re.search(r'name="form_token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no form token on the page"
    return match.group(1)


def test_client_page_shows_the_window_and_the_appointment(client, client_link, clock):
    clock.move_to(NOW + timedelta(hours=1))
    page = client.get(f"/c/{client_link}").get_data(as_text=True)
    assert "Your 24-hour window ends tomorrow at 10:00" in page
    assert "Wednesday, June 17, 2026" in page
    ics = client.get(f"/c/{client_link}/appointment.ics")
    assert ics.mimetype == "text/calendar" and b"DTSTART" in ics.data


def test_worse_on_the_client_page_opens_an_escalation(client, session, client_link):
    page = client.get(f"/c/{client_link}")
    response = client.post(f"/c/{client_link}/checkin", follow_redirects=True,
                           data={"answer": "worse", "form_token": form_token(page)})
    assert "pause back walking" in response.get_data(as_text=True)
    assert session.exec(select(Escalation)).one().severity == "concern"
    assert session.exec(select(CheckIn)).one().source == "web"


def test_pain_score_from_the_slider(client, session, client_link):
    page = client.get(f"/c/{client_link}")
    client.post(f"/c/{client_link}/checkin",
                data={"answer": "score", "pain": "8", "form_token": form_token(page)})
    assert session.exec(select(CheckIn)).one().pain == 8
    assert session.exec(select(Escalation)).one().reasons == ["pain 8/10", "pain up 2 from baseline 6"]


def test_opt_out_on_the_page_stops_texts_and_emails(client, session, client_link):
    confirm = client.get(f"/c/{client_link}/optout")
    client.post(f"/c/{client_link}/optout", data={"stop": "both", "form_token": form_token(confirm)})
    row = session.exec(select(Client)).one()
    assert row.sms_opted_out_at and row.email_opted_out_at
    pending = session.exec(select(Message).where(Message.status == "pending")).all()
    assert pending == []


@pytest.mark.parametrize("mangle", [lambda t: t[:-2] + "xx", lambda t: "garbage",
                                    lambda t: t.split(".")[0] + ".AAAA.BBBB"])
def test_a_tampered_link_gets_a_friendly_page_and_no_data(client, client_link, mangle):
    response = client.get(f"/c/{mangle(client_link)}")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "This link has expired" in page and "Ana" not in page


def test_an_expired_link_gets_the_friendly_page(client, client_link, clock):
    clock.move_to(NOW + timedelta(days=91))
    response = client.get(f"/c/{client_link}")
    assert response.status_code == 404 and "Ana" not in response.get_data(as_text=True)


def test_security_headers(client, client_link):
    response = client.get(f"/c/{client_link}")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in response.get_data(as_text=True)  # no inline scripts at all
    https = client.get(f"/c/{client_link}", base_url="https://aftercare.example.test")
    assert "max-age" in https.headers["Strict-Transport-Security"]


def test_appointment_unaffected_by_opt_out(session, client, client_link):
    assert session.exec(select(Appointment)).one().status == "booked"


def test_export_and_erase_from_the_client_page(logged_in, session):
    enrol_form(logged_in)
    client_row = session.exec(select(Client)).one()
    export = logged_in.get(f"/clients/{client_row.id}/export.json")
    assert export.mimetype == "application/json" and "Ana Ruiz" in export.get_data(as_text=True)
    page = logged_in.get(f"/clients/{client_row.id}/erase")
    refused = logged_in.post(f"/clients/{client_row.id}/erase",
                             data={"csrf_token": csrf_token(page), "confirm": "yes"})
    assert refused.status_code == 422
    logged_in.post(f"/clients/{client_row.id}/erase",
                   data={"csrf_token": csrf_token(page), "confirm": "ERASE"})
    session.expire_all()
    erased = session.get(Client, client_row.id)
    assert erased.phone is None and "Ana" not in erased.name
    assert session.exec(select(Message).where(Message.status == "pending")).all() == []


def test_switching_a_client_to_spanish_translates_their_page(logged_in, session, client_link):
    client_row = session.exec(select(Client)).one()
    page = logged_in.get(f"/clients/{client_row.id}")
    logged_in.post(f"/clients/{client_row.id}/language",
                   data={"language": "es", "csrf_token": csrf_token(page)})
    spanish = logged_in.get(f"/c/{client_link}").get_data(as_text=True)
    assert "¿Cómo siente la espalda?" in spanish and 'lang="es"' in spanish
    assert "How does your back feel?" not in spanish


def test_own_wording_is_previewed_saved_and_sent(app, logged_in, session, clinic):
    page = logged_in.get("/settings")
    assert 'data-testid="preview-checkin"' in page.get_data(as_text=True)
    headers = {"X-CSRFToken": csrf_token(page)}
    preview = logged_in.post("/settings/preview", headers=headers, json={
        "kind": "checkin", "text": "{clinic_name}: Hi {first_name}, how is it?"})
    assert preview.get_json()["body"] == "Back Walk Clinic: Hi Alexandria-Marguerite, how is it?"
    assert preview.get_json()["segments"] == 1
    numbers = logged_in.post("/settings/preview", headers=headers, json={
        "kind": "checkin", "text": "Call {clinic_phone}, or {emergency_number}"})
    assert numbers.get_json()["body"] == "Call (202) 555-0100, or 911"  # as clients will read it
    unicode = logged_in.post("/settings/preview", headers=headers,
                             json={"kind": "checkin", "text": "Hi 😀"})
    assert unicode.status_code == 422 and unicode.get_json()["encoding"] == "UCS-2"
    for hostile in ("{nope}", "{% if %}", "{{ ''.__class__.__mro__ }}", "{0.__class__}"):
        refused = logged_in.post("/settings/preview", headers=headers,
                                 json={"kind": "checkin", "text": hostile})
        assert refused.status_code == 422 and refused.get_json()["problems"]

    token = csrf_token(page)
    bad = logged_in.post("/settings/wording", data={"csrf_token": token,
                                                    "wording_checkin": "{broken"})
    assert bad.status_code == 422
    logged_in.post("/settings/wording", data={
        "csrf_token": token, "wording_checkin": "{clinic_name}: 1, 2 or 3, {first_name}?"})
    session.expire_all()
    saved = session.get(type(clinic[0]), clinic[0].id)
    assert saved.plan_overrides["wording"] == {
        "en": {"checkin": "{clinic_name}: 1, 2 or 3, {first_name}?"}}
    from service.messaging.rendering import Renderer
    body = Renderer().render("checkin", "sms", "en", {"clinic_name": "C", "client_name": "Ana"},
                             saved.plan_overrides["wording"]["en"]).body
    assert body == "C: 1, 2 or 3, Ana?"
