"""The wording editor in a real browser: the live preview (service/static/settings.js) shows each
problem as the owner types, then the text as a client with long values would get it."""

from sqlmodel import select

from service.models import Clinic
from tests.browser.conftest import log_in, no_horizontal_scroll, shot

PREVIEW = "[data-testid=preview-hydration]"


def test_the_live_preview_shows_problems_then_the_text(page, live, owner, db):
    base, _ = live
    log_in(page, base, owner.email)
    page.goto(f"{base}/settings?open=wording")
    assert "{first_name}" in page.inner_text("[data-testid=placeholders-hydration]")

    page.fill("#wording_hydration", "{{ client_name }}, drink water {nope}")
    page.wait_for_selector(f"{PREVIEW} .error >> text=write {{first_name}}, not {{{{ client_name }}}}")
    assert "{nope} is not a placeholder here" in page.inner_text(PREVIEW)
    assert page.locator(f"{PREVIEW} pre").count() == 0

    page.fill("#wording_hydration", "{clinic_name}: {first_name}, drink water today. {link}")
    page.wait_for_selector(f"{PREVIEW} pre >> text=Sunrise Back Walking: Alexandria-Marguerite")
    assert page.locator(f"{PREVIEW} .error").count() == 0
    assert "segment(s), GSM-7" in page.inner_text(PREVIEW)
    assert no_horizontal_scroll(page)  # the long link wraps
    shot(page, "wording-preview")

    page.click("text=Save wording")
    page.wait_for_selector("text=Wording saved.")
    db.expire_all()
    clinic = db.exec(select(Clinic).where(Clinic.id == owner.clinic_id)).one()
    assert clinic.plan_overrides["wording"] == {
        "en": {"hydration": "{clinic_name}: {first_name}, drink water today. {link}"}}
