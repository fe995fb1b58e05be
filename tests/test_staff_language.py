"""Staff pages follow the browser's language (Accept-Language), English by default."""

from tests.web_helpers import log_in, make_staff

SPANISH = {"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"}


def _logged_in(client, session, clinic):
    make_staff(session, clinic[0], "owner@clinic.example")
    assert log_in(client, "owner@clinic.example").status_code == 302
    return client


def test_the_login_page_is_in_the_browser_s_language(client):
    assert '<html lang="es">' in client.get("/login", headers=SPANISH).get_data(as_text=True)
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)


def test_staff_pages_are_in_the_browser_s_language_and_english_by_default(client, session, clinic):
    web = _logged_in(client, session, clinic)
    assert '<html lang="es">' in web.get("/", headers=SPANISH).get_data(as_text=True)
    assert '<html lang="en">' in web.get("/").get_data(as_text=True)
    assert '<html lang="en">' in web.get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
