"""What staff and clients do on their phones, in a real browser."""

from datetime import timedelta

from sqlmodel import select

from service.messaging.links import client_page_url
from service.models import Client, Escalation, Message, Visit, utcnow
from tests.browser.conftest import log_in, no_horizontal_scroll, shot


def enrol(page, base, name="Maria Lopez", phone="(202) 555-0142", tick=()):
    page.goto(f"{base}/visits/new")
    page.fill("#name", name)
    page.fill("#phone", phone)
    page.check("#sms_consent")
    page.click("label[for=pain_before-6]")
    page.click("label[for=pain_after-3]")
    page.check("#first_visit")
    for key in tick:
        page.check(f"input[name=contraindication][value={key}]")
    if not tick:
        page.check("#none_apply")
    shot(page, "enrol-form")
    page.click("text=Enrol and plan aftercare")


def test_log_in_enrol_a_client_and_see_the_timeline(page, live, owner, db):
    base, _ = live
    log_in(page, base, owner.email)
    enrol(page, base)
    page.wait_for_selector("[data-testid=timeline]")
    assert "Aftercare planned for" in page.inner_text("h1")
    rows = page.locator("[data-testid=timeline] tbody tr")
    visit = db.exec(select(Visit)).one()
    assert visit.visit_number == 1
    # Every planned message has its row. How many are planned depends on the hour of the
    # enrolment (this test runs at the real time of day; a late evening plans fewer).
    planned = db.exec(select(Message).where(Message.visit_id == visit.id)).all()
    assert len(planned) >= 4 and rows.count() == len(planned)
    assert "24-hour care window" in rows.first.inner_text()
    shot(page, "timeline")


def test_a_contraindication_keeps_the_aftercare_and_asks_for_a_review(page, live, owner, db):
    base, _ = live
    log_in(page, base, owner.email)
    enrol(page, base, tick=["osteoporosis"])
    page.wait_for_selector("[data-testid=timeline]")
    assert "Rebooking waits until the checklist is reviewed" in page.inner_text("main")
    page.goto(f"{base}/")
    page.click("[data-testid=needs-review]")
    assert "Osteoporosis" in page.inner_text("[data-testid=review]")
    shot(page, "needs-review")
    assert db.exec(select(Visit)).one().contraindications == ["osteoporosis"]


def test_acknowledge_an_escalation(page, live, owner, db):
    base, _ = live
    client = Client(clinic_id=owner.clinic_id, name="Dana Smith", phone="+12025550177",
                    time_zone="America/New_York")
    db.add(client)
    db.commit()
    db.add(Escalation(clinic_id=owner.clinic_id, client_id=client.id, severity="urgent",
                      reasons=["red flag: leg weakness"], opened_at=utcnow() - timedelta(minutes=12)))
    db.commit()
    log_in(page, base, owner.email)
    card = page.locator("[data-testid=escalation]")
    assert "red flag: leg weakness" in card.inner_text() and "URGENT" in card.inner_text()
    shot(page, "dashboard")
    card.locator("input[name=note]").fill("Called Dana, she is going to urgent care")
    card.locator("text=Acknowledge").click()
    page.wait_for_selector("text=Escalation acknowledged.")
    assert page.locator("[data-testid=escalation]").count() == 0
    db.expire_all()
    assert db.exec(select(Escalation)).one().status == "acknowledged"


def test_worse_on_the_client_link_reaches_the_dashboard(browser, page, live, owner, db):
    base, app = live
    log_in(page, base, owner.email)
    enrol(page, base)
    page.wait_for_selector("[data-testid=timeline]")
    client = db.exec(select(Client)).one()
    link = client_page_url(app.extensions["aftercare.config"], client.id, client.link_version)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    phone.goto(link)
    assert "ends tomorrow" in phone.inner_text("[data-testid=window]") or \
        "ends today" in phone.inner_text("[data-testid=window]")
    shot(phone, "client-page")
    phone.click("button[value=worse]")
    assert "pause back walking" in phone.inner_text("[data-testid=advice]")
    phone.context.close()

    page.goto(f"{base}/")
    card = page.locator("[data-testid=escalation]")
    assert "Maria Lopez" in card.inner_text() and "said worse" in card.inner_text()


def test_a_client_switched_to_spanish_sees_their_page_in_spanish(page, live, owner, db):
    base, app = live
    log_in(page, base, owner.email)
    enrol(page, base)
    page.wait_for_selector("[data-testid=timeline]")
    client = db.exec(select(Client)).one()
    page.goto(f"{base}/clients/{client.id}")
    page.select_option("#language", "es")
    page.click("text=Save language")
    page.wait_for_selector("text=Language saved.")
    page.goto(client_page_url(app.extensions["aftercare.config"], client.id, client.link_version))
    assert "¿Cómo siente la espalda?" in page.inner_text("body")
    assert page.get_attribute("html", "lang") == "es"
    shot(page, "client-page-es")


def test_no_page_scrolls_sideways_at_390px(page, live, owner, db):
    base, app = live
    log_in(page, base, owner.email)
    enrol(page, base, name="Alexandria-Marguerite Bartholomew-Featherstonehaugh")
    page.wait_for_selector("[data-testid=timeline]")
    client = db.exec(select(Client)).one()
    urls = ["/login", "/", "/visits/new", f"/visits/{db.exec(select(Visit)).one().id}",
            f"/clients/{client.id}", "/settings", f"/clients/{client.id}/erase"]
    wide = []
    for url in urls:
        page.goto(base + url)
        if not no_horizontal_scroll(page):
            wide.append(url)
    page.goto(client_page_url(app.extensions["aftercare.config"], client.id, client.link_version))
    if not no_horizontal_scroll(page):
        wide.append("/c/<token>")
    shot(page, "client-page-long-name")
    assert wide == []


def test_typing_a_known_name_offers_the_client(page, live, owner, db):
    base, _ = live
    db.add(Client(clinic_id=owner.clinic_id, name="Rosa Delgado", phone="+12025550188",
                  email="rosa@example.com", language="es", time_zone="America/New_York"))
    db.commit()
    log_in(page, base, owner.email)
    page.goto(f"{base}/visits/new")
    page.type("#name", "Ros")
    page.click("#suggestions button")
    assert page.input_value("#phone") == "+12025550188"
    assert page.input_value("#language") == "es"
