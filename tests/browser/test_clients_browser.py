"""Issue 16 item 1 on a phone: find a client as you type, open them, copy their page link."""

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from service.messaging.links import read_token
from service.models import Client
from tests.browser.conftest import ARTIFACTS, PHONE, log_in, no_horizontal_scroll


@pytest.mark.parametrize("size", [PHONE, {"width": 320, "height": 640}], ids=["390x844", "320x640"])
def test_search_open_a_client_and_copy_their_link(browser, live, owner, db, size):
    base, app = live
    db.add_all([Client(clinic_id=owner.clinic_id, name=name, phone=phone, time_zone="America/New_York")
                for name, phone in (("Dana Smith", "+12025550177"), ("Dan Ortega", "+12025550178"),
                                    ("Eve Park", "+12025550179"))])
    db.commit()
    context = browser.new_context(viewport=size, is_mobile=True, has_touch=True, device_scale_factor=2,
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        log_in(page, base, owner.email)
        page.click("header nav >> text=Clients")
        rows = page.locator("[data-testid=client-row]")
        expect(rows).to_have_count(3)
        page.fill("#q", "dan")  # as you type: no Enter
        expect(rows).to_have_count(2)
        page.fill("#q", "(202) 555-0177")
        expect(rows).to_have_count(1)
        assert "q=%28202%29" in page.url  # the address says what is shown: back and reload keep it
        assert no_horizontal_scroll(page)
        page.screenshot(path=ARTIFACTS / f"clients-{size['width']}.png", full_page=True)

        rows.first.locator("a", has_text="Dana Smith").click()
        expect(page.locator("h1")).to_have_text("Dana Smith")
        dana = db.exec(select(Client).where(Client.name == "Dana Smith")).one()
        link = page.input_value("#page-link")
        assert link.startswith(f"{base}/c/")
        assert read_token(app.extensions["aftercare.config"], link.rsplit("/", 1)[1]) == (dana.id, 0)
        page.click("#copy-link")
        expect(page.locator("#copy-link")).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == link
        assert no_horizontal_scroll(page)
        page.screenshot(path=ARTIFACTS / f"client-link-{size['width']}.png", full_page=True)
    finally:
        context.close()
