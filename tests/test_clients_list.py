"""Issue 16 item 1: staff find a client (/clients: search by name, phone in any format or email,
filters, paging, one clinic only, audited) and keep their details (validated as at enrolment,
audited without personal values, messages still to go follow a new number), see and copy their
page link, and enrol a new visit from their page."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import select

from service.domain.roles import Role
from service.models import Appointment, AuditEvent, Client, Escalation, Visit, utcnow
from tests.conftest import BOTH_BACKENDS, make_clinic
from tests.helpers import NOW, PHONE, at, enrol, messages
from tests.web_helpers import csrf_token, log_in, make_staff

OTHER_PHONE = "+12025550188"


def logged_in(app, session, clinic, role=Role.CLINICIAN):
    make_staff(session, clinic, f"{role}@clinic.example", role=role)
    web = app.test_client()
    assert log_in(web, f"{role}@clinic.example").status_code == 302
    return web


def add_client(session, clinic, name, phone=None, email=None, **fields) -> Client:
    client = Client(clinic_id=clinic.id, name=name, phone=phone, email=email, time_zone="UTC",
                    **fields)
    session.add(client)
    session.commit()
    return client


def names(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return re.findall(r'data-testid="client-row"><a [^>]*><strong>([^<]+)</strong>',
                      response.get_data(as_text=True))


@pytest.fixture
def people(session, clinic):
    """Ana (phone, email), Bo (email only) in this clinic; another clinic's Ana, same number."""
    here = clinic[0]
    other, _ = make_clinic(session, name="Elsewhere")
    return {"ana": add_client(session, here, "Ana Ruiz", PHONE, "ana@example.com"),
            "bo": add_client(session, here, "Bo Lee", None, "bo.lee@mail.example"),
            "theirs": add_client(session, other, "Ana Elsewhere", PHONE, "ana@example.com")}


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_search_by_part_of_a_name_any_case_a_phone_in_three_formats_and_an_email(
        app, session, clinic, people):
    web = logged_in(app, session, clinic[0])
    assert names(web.get("/clients")) == ["Ana Ruiz", "Bo Lee"]  # by name, never another clinic's
    assert names(web.get("/clients", query_string={"q": "rUi"})) == ["Ana Ruiz"]
    for typed in ("(202) 555-0123", "+12025550123", "2025550123", "555-0123"):
        assert names(web.get("/clients", query_string={"q": typed})) == ["Ana Ruiz"], typed
    assert names(web.get("/clients", query_string={"q": "BO.LEE@mail"})) == ["Bo Lee"]
    assert names(web.get("/clients", query_string={"q": "ana@example.com"})) == ["Ana Ruiz"]
    assert names(web.get("/clients", query_string={"q": "Elsewhere"})) == []
    assert names(web.get("/clients", query_string={"q": "100%_"})) == []  # wildcards are text


def test_a_search_is_audited_by_its_kind_and_what_it_showed_not_the_text(app, session, clinic,
                                                                         people):
    web = logged_in(app, session, clinic[0])
    web.get("/clients", query_string={"q": "(202) 555-0123", "opted_out": "1"})
    web.get("/clients", query_string={"q": "ana"})
    rows = session.exec(select(AuditEvent).where(AuditEvent.action == "clients_searched")
                        .order_by(AuditEvent.id)).all()
    assert [(r.detail["kind"], r.detail["filters"], r.detail["found"]) for r in rows] == [
        ("phone", ["opted_out"], []), ("name", [], [people["ana"].id])]
    assert all(r.actor.startswith("staff:") and r.clinic_id == clinic[0].id for r in rows)
    assert "555" not in str([r.detail for r in rows])


def test_filters_open_escalation_opted_out_nothing_booked(app, session, clinic, people):
    here = clinic[0]
    ana, bo = people["ana"], people["bo"]
    cy = add_client(session, here, "Cy Opted", OTHER_PHONE, sms_opted_out_at=utcnow())
    session.add_all([
        Escalation(clinic_id=here.id, client_id=ana.id, severity="concern", reasons=["worse"]),
        Appointment(clinic_id=here.id, client_id=bo.id, starts_at=utcnow() + timedelta(days=7)),
        # past or cancelled appointments book nothing
        Appointment(clinic_id=here.id, client_id=cy.id, starts_at=utcnow() - timedelta(days=1)),
        Appointment(clinic_id=here.id, client_id=ana.id, starts_at=utcnow() + timedelta(days=3),
                    status="cancelled"),
    ])
    session.commit()
    web = logged_in(app, session, here)
    assert names(web.get("/clients?escalated=1")) == ["Ana Ruiz"]
    assert names(web.get("/clients?opted_out=1")) == ["Cy Opted"]
    assert names(web.get("/clients?unbooked=1")) == ["Ana Ruiz", "Cy Opted"]
    assert names(web.get("/clients?unbooked=1&opted_out=1")) == ["Cy Opted"]
    assert "open escalation" in web.get("/clients").get_data(as_text=True)

    desk = logged_in(app, session, here, Role.FRONT_DESK)  # an escalation is clinical detail
    page = desk.get("/clients?escalated=1")
    assert names(page) == ["Ana Ruiz", "Bo Lee", "Cy Opted"]
    assert "escalation" not in page.get_data(as_text=True).lower()


def test_a_row_shows_the_phone_as_read_the_last_visit_and_the_next_appointment(app, session, clinic,
                                                                               people):
    here, ana = clinic[0], people["ana"]
    session.add_all([
        Visit(clinic_id=here.id, client_id=ana.id, occurred_at=NOW - timedelta(days=9), visit_number=1),
        Visit(clinic_id=here.id, client_id=ana.id, occurred_at=NOW, visit_number=2),
        Appointment(clinic_id=here.id, client_id=ana.id, starts_at=NOW + timedelta(days=21)),
        Appointment(clinic_id=here.id, client_id=ana.id, starts_at=NOW + timedelta(days=14)),
    ])
    session.commit()
    with at(NOW):
        row = logged_in(app, session, here).get("/clients?q=ana").get_data(as_text=True)
    assert "(202) 555-0123" in row
    assert "Last visit: Wed 10 Jun, 10:00" in row and "next: Wed 24 Jun, 10:00" in row


def test_pages_of_25_with_links_that_keep_the_query_and_filters(app, session, clinic):
    for i in range(30):
        add_client(session, clinic[0], f"Client {i:02d}", email=f"c{i}@example.com")
    web = logged_in(app, session, clinic[0])
    first = web.get("/clients?q=client&unbooked=1")
    assert names(first) == [f"Client {i:02d}" for i in range(25)]
    body = first.get_data(as_text=True)
    assert "30 clients · page 1 of 2" in body and 'rel="prev"' not in body
    following = re.search(r'rel="next" href="([^"]+)"', body).group(1).replace("&amp;", "&")
    assert following == "/clients?page=2&q=client&unbooked=1"
    second = web.get(following)
    assert names(second) == [f"Client {i:02d}" for i in range(25, 30)]
    assert 'rel="next"' not in second.get_data(as_text=True)
    assert names(web.get("/clients?page=9")) == names(second)  # past the end: the last page


def test_bad_parameters_answer_400_naming_the_field(app, session, clinic):
    web = logged_in(app, session, clinic[0])
    for query, field in (({"page": "two"}, "page"), ({"page": "0"}, "page"), ({"q": "x" * 101}, "q")):
        response = web.get("/clients", query_string=query)
        assert response.status_code == 400
        assert f'id="{field}-error"' in response.get_data(as_text=True), query


def test_a_page_costs_the_same_statements_for_5_clients_or_25(app, session, clinic):
    web = logged_in(app, session, clinic[0])
    engine = app.extensions["aftercare.engine"]

    def statements() -> int:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert web.get("/clients").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    for i in range(5):
        add_client(session, clinic[0], f"Few {i}", email=f"f{i}@example.com")
    few = statements()
    for i in range(20):
        add_client(session, clinic[0], f"More {i}", email=f"m{i}@example.com")
    assert statements() == few


# --- the client's details ---

def details(web, client, **changes):
    page = web.get(f"/clients/{client.id}/details")
    form = {"name": client.name, "phone": client.phone or "", "email": client.email or "",
            "language": client.language, "channel_choice": client.channel_choice or "",
            "time_zone": client.time_zone, "csrf_token": csrf_token(page)} | changes
    return web.post(f"/clients/{client.id}/details", data=form)


def test_front_desk_edits_details_and_the_audit_names_the_fields_not_personal_values(
        app, session, clinic, people):
    ana = people["ana"]
    web = logged_in(app, session, clinic[0], Role.FRONT_DESK)
    response = details(web, ana, name="Ana María Ruiz", phone="(202) 555-0188", language="es",
                       time_zone="America/Chicago", email="")
    assert response.status_code == 302 and response.location == f"/clients/{ana.id}"
    session.refresh(ana)
    assert (ana.name, ana.phone, ana.email, ana.language, ana.time_zone) == (
        "Ana María Ruiz", OTHER_PHONE, None, "es", "America/Chicago")
    row = session.exec(select(AuditEvent).where(AuditEvent.action == "client_details_changed")).one()
    assert row.client_id == ana.id and row.actor.startswith("staff:")
    assert row.detail == {"fields": ["name", "phone", "email", "language", "time_zone"],
                          "language": "es", "time_zone": "America/Chicago"}
    assert details(web, ana).status_code == 302  # nothing changed: nothing audited
    assert len(session.exec(select(AuditEvent).where(
        AuditEvent.action == "client_details_changed")).all()) == 1


BAD_DETAILS = [
    ({"phone": "555-01"}, "phone", "not a"),
    ({"phone": "+1 900 555 0123"}, "phone", "premium-rate"),
    ({"email": "not an email"}, "email", "email"),
    ({"name": ""}, "name", "at least 1 character"),
    ({"time_zone": "Mars/Olympus"}, "time_zone", "IANA"),
    ({"language": "fr"}, "language", "'en' or 'es'"),
    ({"channel_choice": "pigeon"}, "channel_choice", "texts, email or both"),
    ({"channel_choice": "sms", "phone": ""}, "channel_choice", "needs a phone"),
    ({"phone": "", "email": ""}, "phone", "phone or an email"),
    ({"phone": OTHER_PHONE}, "phone", "another client"),
]


def test_bad_details_answer_422_with_the_field_named_and_change_nothing(app, session, clinic,
                                                                        people):
    add_client(session, clinic[0], "Cy Taken", OTHER_PHONE)
    ana = people["ana"]
    web = logged_in(app, session, clinic[0])
    for changes, field, reason in BAD_DETAILS:
        response = details(web, ana, **changes)
        body = response.get_data(as_text=True)
        assert response.status_code == 422, changes
        error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', body)
        assert error and reason in error.group(1).replace("&#39;", "'"), (changes, body)
        assert f'aria-describedby="{field}-error"' in body
    session.expire_all()
    assert session.get(Client, ana.id).phone == PHONE
    assert not session.exec(select(AuditEvent).where(
        AuditEvent.action == "client_details_changed")).all()


def test_texts_still_to_go_follow_a_new_number_and_stop_when_it_is_removed(app, session, clinic):
    here, key = clinic
    enrol(app.test_client(), key, person={"email": "ana@example.com"})
    ana = session.exec(select(Client).where(Client.clinic_id == here.id)).one()
    with at(NOW):
        web = logged_in(app, session, here)
    pending = messages(session, client_id=ana.id, channel="sms", status="pending")
    assert pending and {m.recipient for m in pending} == {PHONE}
    with at(NOW + timedelta(minutes=1)):
        assert details(web, ana, phone=OTHER_PHONE).status_code == 302
    assert {m.recipient for m in messages(session, client_id=ana.id, status="pending",
                                          channel="sms")} == {OTHER_PHONE}
    assert len(messages(session, client_id=ana.id, status="pending", channel="sms")) == len(pending)

    session.refresh(ana)
    with at(NOW + timedelta(minutes=2)):
        assert details(web, ana, phone="").status_code == 302
    assert messages(session, client_id=ana.id, status="pending", channel="sms") == []
    assert messages(session, client_id=ana.id, status="pending", channel="email")  # email instead


def test_a_client_without_consent_gets_it_recorded_from_the_details_form(app, session, clinic,
                                                                         people):
    bo = people["bo"]
    web = logged_in(app, session, clinic[0])
    assert 'name="sms_consent"' in web.get(f"/clients/{bo.id}/details").get_data(as_text=True)
    assert details(web, bo, phone=OTHER_PHONE, sms_consent="on").status_code == 302
    session.refresh(bo)
    assert bo.sms_consent_at is not None and bo.can_receive_sms


def test_another_clinics_client_cannot_be_edited_or_prefilled(app, session, clinic, people):
    web = logged_in(app, session, clinic[0])
    theirs = people["theirs"]
    assert web.get(f"/clients/{theirs.id}/details").status_code == 404
    token = csrf_token(web.get("/clients"))
    assert web.post(f"/clients/{theirs.id}/details", data={"csrf_token": token,
                                                           "name": "X"}).status_code == 404
    assert web.get(f"/visits/new?client={theirs.id}").status_code == 404


# --- the page link, and enrolling from the client ---

def test_the_page_link_is_shown_to_who_keeps_it_and_logged_as_seen(app, session, clinic, people):
    ana = people["ana"]
    desk = logged_in(app, session, clinic[0], Role.FRONT_DESK)
    page = desk.get(f"/clients/{ana.id}").get_data(as_text=True)
    link = re.search(r'<input id="page-link" value="([^"]+)" readonly>', page).group(1)
    assert link.startswith("http") and "/c/" in link
    assert 'id="copy-link"' in page and "copy-link.js" in page
    opened = app.test_client().get(link[link.index("/c/"):])
    assert opened.status_code == 200 and "Ana" in opened.get_data(as_text=True)
    viewed = session.exec(select(AuditEvent).where(AuditEvent.action == "client_viewed")).one()
    assert viewed.detail == {"link_shown": True}

    reader = logged_in(app, session, clinic[0], Role.READ_ONLY)
    assert 'id="page-link"' not in reader.get(f"/clients/{ana.id}").get_data(as_text=True)


def test_enrol_a_new_visit_from_the_client_page_prefills_the_form(app, session, clinic, people):
    ana = people["ana"]
    ana.sms_consent_at = utcnow()
    session.add(ana)
    session.commit()
    web = logged_in(app, session, clinic[0], Role.FRONT_DESK)
    assert f'href="/visits/new?client={ana.id}"' in web.get(f"/clients/{ana.id}").get_data(as_text=True)
    form = web.get(f"/visits/new?client={ana.id}").get_data(as_text=True)
    assert 'value="Ana Ruiz"' in form and f'value="{PHONE}"' in form
    assert 'value="ana@example.com"' in form
    assert re.search(r'name="sms_consent" id="sms_consent"\s+checked', form)


def test_each_row_links_to_enrol_a_visit_for_who_may_enrol(app, session, clinic, people):
    ana = people["ana"]
    link = f'href="/visits/new?client={ana.id}"'
    desk = logged_in(app, session, clinic[0], Role.FRONT_DESK)
    assert link in desk.get("/clients?q=Ana").get_data(as_text=True)
    reader = logged_in(app, session, clinic[0], Role.READ_ONLY)
    assert link not in reader.get("/clients?q=Ana").get_data(as_text=True)
