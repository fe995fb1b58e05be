"""The client's safety path on a phone (Chromium, 390x844), with no cookie for the site: "worse"
is recorded once and answered, a red flag reaches on-call's phone at the fake Twilio, the night
answer says when the team will see it, and opt-out asks first and can be undone.

The server runs on the real clock, so instead of freezing it each test sets the clinic's quiet
hours: none at all (daytime), or a window around the current moment (night)."""

import threading
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import func, select

from service.domain.messages import MessageKind
from service.messaging.dispatch import Dispatcher
from service.messaging.links import client_page_url
from service.models import AuditEvent, CheckIn, Client, Clinic, Escalation, Message
from tests.browser.conftest import no_horizontal_scroll, shot
from tests.conftest import auth, make_clinic

ON_CALL = "+12025550101"
CLINIC_PHONE = "+12025550100"
ZONE = "America/New_York"

# The live server's Twilio and SMTP point at the fakes (tests/browser/conftest.py's `live`).
pytestmark = pytest.mark.usefixtures("providers")


def quiet_hours(now_local: datetime, night: bool) -> dict:
    """None (start == end), or from an hour ago until two hours from now."""
    if not night:
        return {"quiet_start": time(0, 0), "quiet_end": time(0, 0)}
    return {"quiet_start": (now_local - timedelta(hours=1)).time().replace(second=0, microsecond=0),
            "quiet_end": (now_local + timedelta(hours=2)).time().replace(second=0, microsecond=0)}


@pytest.fixture
def enrolled(live, db):
    """Enrols a client now; returns (their page link, their id). With night=True the clinic's
    quiet hours are on now."""

    def make(night: bool = False) -> tuple[str, int]:
        base, app = live
        fields = quiet_hours(datetime.now(ZoneInfo(ZONE)), night)
        clinic, key = make_clinic(db, name="Sunrise Back Walking", **fields)
        response = app.test_client().post("/api/v1/visits", headers=auth(key), json={
            "client": {"name": "Maria Lopez", "phone": "+12025550142", "email": "maria@example.com",
                       "sms_consent": True, "time_zone": ZONE}, "pain_before": 4})
        assert response.status_code == 201, response.get_json()
        client = db.get(Client, response.get_json()["client_id"])
        return client_page_url(app.extensions["aftercare.config"], client.id, client.link_version), client.id

    return make


def count(db, model, *where) -> int:
    db.expire_all()
    return db.exec(select(func.count()).select_from(model).where(*where)).one()


def open_without_cookies(page, link: str) -> None:
    page.goto(link)
    page.context.clear_cookies()


def test_worse_with_no_cookie_is_recorded_once_and_answered(page, live, db, enrolled):
    link, _ = enrolled()
    open_without_cookies(page, link)
    page.click("button[value=worse]")
    advice = page.locator("[data-testid=advice]")
    assert "pause back walking" in advice.inner_text()
    assert "We have let the team know." in advice.inner_text()
    assert advice.locator(f'a[href="tel:{CLINIC_PHONE}"]').inner_text() == "(202) 555-0100"
    assert page.context.cookies() == []
    assert no_horizontal_scroll(page)
    shot(page, "client-worse")
    assert db.exec(select(Escalation)).one().severity == "concern"

    page.reload()  # after a post/redirect/get: a GET, nothing posted again
    assert "pause back walking" in page.inner_text("[data-testid=advice]")
    page.go_back()
    page.go_forward()
    assert count(db, CheckIn) == 1 and count(db, Escalation) == 1


def test_a_red_flag_tap_pages_on_call_and_the_text_reaches_twilio(page, live, db, enrolled,
                                                                   providers):
    link, client_id = enrolled()
    open_without_cookies(page, link)
    section = page.locator("[data-testid=red-flags]")
    assert section.locator('a[href="tel:911"]').count() == 1  # always there, before any tap
    section.get_by_role("button", name="Numbness or tingling in the legs or groin").click()
    alert = page.get_by_role("alert")
    assert "Please seek urgent medical care now." in alert.inner_text()
    assert alert.locator('a[href="tel:911"]').inner_text() == "Call 911"
    assert "(202) 555-0100" in alert.locator(f'a[href="tel:{CLINIC_PHONE}"]').inner_text()
    assert no_horizontal_scroll(page)
    shot(page, "client-red-flag")

    checkin = db.exec(select(CheckIn)).one()
    assert checkin.red_flags == ["numbness"] and checkin.source == "web"
    assert db.exec(select(Escalation)).one().severity == "urgent"
    alert_row = db.exec(select(Message).where(Message.kind == MessageKind.STAFF_ALERT,
                                              Message.channel == "sms")).one()
    assert alert_row.recipient == ON_CALL and alert_row.priority == 0

    twilio, _ = providers
    base, app = live
    dispatcher = Dispatcher(app.extensions["aftercare.config"], app.extensions["aftercare.engine"],
                            worker_id="browser-test")
    # Playwright's sync API runs an event loop in this thread; the dispatcher runs its own.
    worker = threading.Thread(target=dispatcher.drain)
    worker.start()
    worker.join(timeout=30)
    paged = [m.body for m in twilio.wait_for(1) if m.to == ON_CALL]
    assert len(paged) == 1 and paged[0].startswith("Aftercare URGENT")
    assert f"/clients/{client_id}" in paged[0]
    db.expire_all()
    assert db.get(Message, alert_row.id).status == "sent"


def test_a_concern_at_night_says_when_the_team_will_see_it(page, live, db, enrolled):
    link, _ = enrolled(night=True)
    open_without_cookies(page, link)
    page.click("button[value=worse]")
    told = page.inner_text("[data-testid=team-sees]")
    ends = db.exec(select(Clinic)).one().quiet_end
    assert "The team will see this today at" in told or "The team will see this tomorrow at" in told
    assert f"{ends.hour % 12 or 12}:{ends.minute:02d}" in told
    assert "If it gets worse before then" in told
    assert page.locator('[data-testid=team-sees] a[href="tel:911"]').count() == 1
    assert "We have let the team know." not in page.inner_text("[data-testid=advice]")
    shot(page, "client-night")
    held = db.exec(select(Message).where(Message.kind == MessageKind.STAFF_ALERT)).all()
    assert held and all(m.status == "pending" for m in held)


def test_opt_out_asks_first_and_can_be_undone(page, live, db, enrolled):
    link, client_id = enrolled()
    open_without_cookies(page, link)
    assert "You can also answer our texts" in page.inner_text("body")
    page.click("text=Stop texts or emails…")
    page.wait_for_url("**/optout")  # a link: count() below would not wait for the page to load
    confirm = page.locator("[data-testid=optout-confirm]")
    assert confirm.get_by_label("Stop texts", exact=True).count() == 1
    assert confirm.get_by_label("Stop both texts and emails").count() == 1
    assert no_horizontal_scroll(page)
    shot(page, "client-optout-confirm")
    db.expire_all()
    assert db.get(Client, client_id).sms_opted_out_at is None  # nothing before confirming

    confirm.get_by_label("Stop texts", exact=True).check()
    confirm.get_by_role("button", name="Yes, stop them").click()
    messages = page.locator("[data-testid=messages]")
    assert "Texts are off." in messages.inner_text()
    assert "You can also answer our texts" not in page.inner_text("body")
    assert page.locator("button[value=worse]").is_visible()  # the page's own check-in still works
    shot(page, "client-opted-out")
    db.expire_all()
    row = db.get(Client, client_id)
    assert row.sms_opted_out_at and not row.email_opted_out_at

    messages.get_by_role("button", name="Turn texts back on").click()
    page.wait_for_selector("[data-testid=done]")
    assert "Texts are off." not in page.inner_text("[data-testid=messages]")
    db.expire_all()
    assert db.get(Client, client_id).sms_opted_out_at is None
    actions = db.exec(select(AuditEvent.action).where(AuditEvent.detail["via"].as_string() == "web")
                      .order_by(AuditEvent.id)).all()
    assert actions == ["opted_out", "opted_in"]
