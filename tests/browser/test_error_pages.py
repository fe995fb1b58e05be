"""An error page on a phone: styled, in the browser's language, no sideways scroll."""

import re

import pytest

from tests.browser.conftest import PHONE, no_horizontal_scroll, shot


@pytest.fixture
def spanish_page(browser):
    """A phone whose browser is set to Spanish: it sends Accept-Language: es-ES."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, locale="es-ES")
    yield context.new_page()
    context.close()


def assert_a_styled_phone_page(page, response, heading: str, language: str):
    assert response.status == 404
    assert page.locator("html").get_attribute("lang") == language
    assert page.locator("[data-testid=error-page] h1").inner_text() == heading
    # app.css is applied (the CSP allows only our own stylesheet): the coloured header bar.
    assert page.locator("header.top").evaluate("e => getComputedStyle(e).backgroundColor") \
        == "rgb(47, 93, 98)"
    assert no_horizontal_scroll(page)


def test_a_404_in_english_on_a_phone(live, page):
    base, _ = live
    response = page.goto(f"{base}/an/address/that/does-not-exist")
    assert_a_styled_phone_page(page, response, "We cannot find that page", "en")
    shot(page, "error-404-en")
    page.get_by_role("link", name="Go to the start page").tap()
    page.wait_for_url(re.compile(r"/login\?next="))  # the start page asks a visitor to log in


def test_a_404_in_spanish_on_a_phone(live, spanish_page):
    base, _ = live
    response = spanish_page.goto(f"{base}/an/address/that/does-not-exist")
    assert_a_styled_phone_page(spanish_page, response, "No encontramos esa página", "es")
    assert spanish_page.get_by_role("link", name="Ir a la página de inicio").is_visible()
    shot(spanish_page, "error-404-es")
