"""Settings in sections (issue 16 item 7): each section's form saves only its own fields, so
saving one never resets another; the clinic's name, phone and address are editable and audited;
"no quiet hours" is an explicit choice."""

import re
from datetime import time

from sqlmodel import select

from service.models import AuditEvent, Clinic
from tests.web_helpers import csrf_token, log_in, make_staff

CLINIC_SECTION = {"section": "clinic", "name": "Riverside Back Walking", "phone": "(202) 555-0190",
                  "address": "12 Mill Lane, Springfield", "time_zone": "America/Chicago",
                  "quiet_start": "20:00", "quiet_end": "07:30"}


def owner_web(app, session, clinic):
    make_staff(session, clinic, "owner@clinic.example")
    web = app.test_client()
    log_in(web, "owner@clinic.example")
    return web


def post(web, **data):
    return web.post("/settings", data={"csrf_token": csrf_token(web.get("/settings")), **data})


def saved(session, clinic) -> Clinic:
    session.expire_all()
    return session.get(Clinic, clinic.id)


def test_the_page_has_a_form_and_a_link_per_section(app, session, clinic):
    page = owner_web(app, session, clinic[0]).get("/settings").get_data(as_text=True)
    for section in ("clinic", "on_call", "plan", "security"):
        assert f'name="section" value="{section}"' in page
    for anchor in ("clinic", "plan", "texting", "wording", "staff", "api_keys", "security"):
        assert f'href="/settings?open={anchor}#{anchor}"' in page
    assert 'href="/clients/import"' in page


def opened(page) -> list[str]:
    return re.findall(r'<details id="(\w+)" class="section" open>', page.get_data(as_text=True))


def test_sections_are_folded_but_the_one_asked_for_saved_or_refused(app, session, clinic):
    """A phone's page is a list of sections; the one the owner is working in is open."""
    web = owner_web(app, session, clinic[0])
    page = web.get("/settings")
    assert page.get_data(as_text=True).count('class="section"') == 8 and opened(page) == []
    assert opened(web.get("/settings?open=security")) == ["security"]
    assert opened(web.get(post(web, **CLINIC_SECTION).headers["Location"])) == ["clinic"]
    refused = post(web, **{**CLINIC_SECTION, "name": ""})
    assert refused.status_code == 422 and opened(refused) == ["clinic"]


def test_saving_the_clinic_section_keeps_the_plan_and_security_as_saved(app, session, clinic):
    here = clinic[0]
    here.plan_overrides = {"disabled_kinds": ["heat"], "hydration_after_minutes": 90}
    here.both_channels = here.require_totp = False
    here.use_suggested_interval = True
    here.idle_timeout_minutes = 45
    session.add(here)
    session.commit()
    web = owner_web(app, session, here)
    answer = post(web, **CLINIC_SECTION)  # no plan checkbox posted: none may read as "off"
    assert answer.status_code == 302 and answer.headers["Location"] == "/settings?open=clinic#clinic"
    after = saved(session, here)
    assert after.use_suggested_interval is True and after.idle_timeout_minutes == 45
    assert after.plan_overrides == {"disabled_kinds": ["heat"], "hydration_after_minutes": 90}
    assert after.name == "Riverside Back Walking" and after.phone == "+12025550190"
    assert after.address == "12 Mill Lane, Springfield" and after.time_zone == "America/Chicago"
    assert (after.quiet_start, after.quiet_end) == (time(20, 0), time(7, 30))
    details = session.exec(select(AuditEvent).where(
        AuditEvent.action == "clinic_details_changed")).one()
    assert details.detail == {"name": "Riverside Back Walking", "phone": "+12025550190",
                              "address": "12 Mill Lane, Springfield"}
    changed = session.exec(select(AuditEvent).where(AuditEvent.action == "settings_changed")).one()
    assert "quiet_start" in changed.detail["changed"] and "plan_overrides" not in changed.detail["changed"]


def test_saving_the_plan_keeps_the_clinic_and_its_wording(app, session, clinic):
    here = clinic[0]
    here.plan_overrides = {"wording": {"en": {"hydration": "{first_name}, drink water."}}}
    session.add(here)
    session.commit()
    name = here.name
    web = owner_web(app, session, here)
    answer = post(web, section="plan", weekly_visits="2", maintenance_weeks="4",
                  hydration_after="2", heat_after="5", checkin_after="24", followup_after="72",
                  reminder_before="24", kind_checkin="on")
    assert answer.status_code == 302
    after = saved(session, here)
    assert after.name == name and after.quiet_start == time(21, 0)
    assert after.plan_settings().enabled_kinds == {"checkin"} and after.maintenance_weeks == 4
    assert after.plan_overrides["wording"] == {"en": {"hydration": "{first_name}, drink water."}}


def test_no_quiet_hours_is_an_explicit_choice(app, session, clinic):
    web = owner_web(app, session, clinic[0])
    same = post(web, **CLINIC_SECTION | {"quiet_start": "00:00", "quiet_end": "00:00"})
    assert same.status_code == 422
    assert "No quiet hours" in same.get_data(as_text=True)
    assert saved(session, clinic[0]).quiet_start == time(21, 0)  # nothing saved
    assert post(web, **CLINIC_SECTION | {"quiet_off": "on"}).status_code == 302
    after = saved(session, clinic[0])
    assert after.quiet_start == after.quiet_end and after.plan_settings().quiet_start == time(0, 0)
    page = web.get("/settings").get_data(as_text=True)
    assert 'name="quiet_off" id="quiet_off" checked' in page


def test_bad_clinic_details_are_refused_naming_the_field(app, session, clinic):
    phone = clinic[0].phone
    web = owner_web(app, session, clinic[0])
    bad_phone = post(web, **CLINIC_SECTION | {"phone": "12"})
    assert bad_phone.status_code == 422
    assert 'id="clinic_phone" name="phone"' in bad_phone.get_data(as_text=True)
    assert '<p class="error">' in bad_phone.get_data(as_text=True).split('name="phone"')[1].split("<label")[0]
    assert post(web, **CLINIC_SECTION | {"name": " "}).status_code == 422
    assert post(web, **CLINIC_SECTION | {"address": "x" * 201}).status_code == 422
    assert post(web, section="nope").status_code == 400
    assert post(web).status_code == 400
    assert saved(session, clinic[0]).phone == phone
    assert not session.exec(select(AuditEvent).where(AuditEvent.action == "settings_changed")).all()


def test_wording_is_edited_per_language_and_keeps_the_others(app, session, clinic):
    here = clinic[0]
    here.plan_overrides = {"wording": {"en": {"hydration": "{first_name}, drink water."}}}
    session.add(here)
    session.commit()
    web = owner_web(app, session, here)
    page = web.get("/settings?language=es")
    text = page.get_data(as_text=True)
    assert 'name="language" value="es"' in text and 'data-insert="{first_name}"' in text
    assert "drink water" not in text  # the Spanish editor shows ours in Spanish, not the English
    saved_es = web.post("/settings/wording", data={
        "csrf_token": csrf_token(page), "language": "es",
        "wording_hydration": "{first_name}, bebe agua hoy."})
    assert saved_es.status_code == 302
    assert saved_es.headers["Location"] == "/settings?language=es&open=wording#wording"
    assert saved(session, here).plan_overrides["wording"] == {
        "en": {"hydration": "{first_name}, drink water."},
        "es": {"hydration": "{first_name}, bebe agua hoy."}}
    assert "bebe agua hoy" in web.get("/settings?language=es").get_data(as_text=True)
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "wording_changed")).one()
    assert event.detail == {"language": "es", "kinds": ["hydration"]}
    assert web.post("/settings/wording", data={"csrf_token": csrf_token(page),
                                               "language": "fr"}).status_code == 400
    headers = {"X-CSRFToken": csrf_token(page)}
    spanish = web.post("/settings/preview", headers=headers,
                       json={"kind": "hydration", "text": "", "language": "es"}).get_json()
    assert spanish["source"] != web.post("/settings/preview", headers=headers, json={
        "kind": "hydration", "text": ""}).get_json()["source"]  # ours, in each language
    assert web.post("/settings/preview", headers=headers, json={
        "kind": "hydration", "text": "x", "language": "fr"}).status_code == 400
