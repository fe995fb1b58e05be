"""The triage dashboard on a phone (issue 16 items 3 and 4), one flow: an alert's link opened while
logged out lands on its client after the login form, and with 200 open escalations the counts and
the most urgent rows are on the first screen and the whole page stays under 5 screens."""

from datetime import timedelta

from service.models import Client, Escalation, utcnow
from tests.browser.conftest import ARTIFACTS, PASSWORD, PHONE, shot

OPEN, URGENT = 200, 30


def seed(db, clinic_id) -> list[Client]:
    people = [Client(clinic_id=clinic_id, name=f"Client {i:03}", phone=f"+1202555{i:04}",
                     time_zone="America/New_York") for i in range(OPEN)]
    db.add_all(people)
    db.flush()
    db.add_all([Escalation(clinic_id=clinic_id, client_id=person.id,
                           severity="urgent" if i < URGENT else "concern",
                           reasons=["red flag: new leg weakness"] if i < URGENT else ["said worse"],
                           notify_count=i % 4, opened_at=utcnow() - timedelta(minutes=i))
                for i, person in enumerate(people)])
    db.commit()
    return people


def inside_first_screen(locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"]


def test_200_open_escalations_on_a_phone_after_an_alert_link(page, live, owner, db):
    base, _ = live
    people = seed(db, owner.clinic_id)
    alert_target = f"{base}/clients/{people[0].id}"  # what the staff alert links to
    page.goto(alert_target)
    page.wait_for_url(f"{base}/login?next=*")
    page.fill("#email", owner.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(alert_target)
    assert "Client 000" in page.inner_text("h1")

    page.goto(f"{base}/")
    counts = page.locator("[data-testid=counts]")
    assert inside_first_screen(counts)
    assert page.inner_text("[data-testid=count-urgent]").split() == [str(URGENT), "urgent"]
    assert page.inner_text("[data-testid=count-concern]").split() == [str(OPEN - URGENT), "concern"]
    first = page.locator("[data-testid=escalation]").first
    assert inside_first_screen(first.locator(".badge")) and "URGENT" in first.inner_text()
    height = page.evaluate("document.body.scrollHeight")
    print(f"dashboard with {OPEN} open escalations at 390x844: {height} px "
          f"({height / PHONE['height']:.1f} screens)")
    assert height < 5 * PHONE["height"]
    shot(page, "dashboard-200-open")
    page.screenshot(path=ARTIFACTS / "dashboard-first-screen.png")  # what a phone shows first

    page.click("[data-testid=count-urgent]")
    page.wait_for_url(f"{base}/?show=urgent")
    rows = page.locator("[data-testid=escalation]")
    assert rows.count() == 20 and all("URGENT" in text for text in rows.all_inner_texts())
    page.click("a[rel=next]")
    page.wait_for_url(f"{base}/?show=urgent&page=2")
    assert rows.count() == URGENT - 20
