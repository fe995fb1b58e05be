"""Two-factor sign-in on a phone, in a real browser (issue 15): enrol from the page's key, then
log in with a code."""

import time

import pyotp

from tests.browser.conftest import log_in, no_horizontal_scroll, shot
from tests.web_helpers import PASSWORD


def test_enrol_in_totp_and_log_in_with_it(page, live, owner):
    base, _ = live
    log_in(page, base, owner.email)
    page.click("nav >> text=Two-factor")
    assert page.locator("[data-testid=totp-qr]").evaluate("img => img.naturalWidth > 0")
    assert no_horizontal_scroll(page)
    shot(page, "totp-enrol")
    otp = pyotp.TOTP(page.inner_text("[data-testid=totp-secret]"))
    page.fill("#code", otp.now())
    page.click("text=Turn on")
    assert page.locator("[data-testid=recovery-codes] li").count() == 10
    shot(page, "totp-recovery-codes")

    page.click("text=Log out")
    page.fill("#email", owner.email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/login/code**")
    # The next step's code (accepted, one step either side): later than enrolment's, so it is
    # not refused as a replay, whenever the clock turns a step. No waiting for the next step.
    page.fill("#code", otp.at(time.time() + otp.interval))
    page.click("text=Log in")
    page.wait_for_url(f"{base}/")
    assert page.locator("nav >> text=Two-factor").is_visible()
