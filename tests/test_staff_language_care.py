"""The care pages staff use (enrol, client, visit, inbox words, screening, erase) and the words
the server sends their scripts follow the browser's language: Spanish with Accept-Language: es,
English by default."""

import re
from datetime import UTC, datetime

import pytest
from babel.messages.extract import extract_from_file
from babel.support import Translations
from freezegun import freeze_time
from markupsafe import escape

from service.config import ROOT
from tests.web_helpers import csrf_token, log_in, make_staff

SPANISH = {"Accept-Language": "es-ES,es;q=0.9"}
SPANISH_CATALOG = Translations.load(ROOT / "service" / "translations", ["es"])
NOW = datetime(2026, 6, 10, 14, 7, tzinfo=UTC)  # 10:07 in New York: a daytime send


@pytest.fixture(autouse=True)
def clock():
    with freeze_time(NOW, tick=True) as frozen:
        yield frozen


@pytest.fixture
def web(client, session, clinic):
    assert log_in(client, make_staff(session, clinic[0], "owner@clinic.example").email).status_code == 302
    return client


def _english_left(page: str, template: str) -> list[str]:
    """A staff template's English sentences (the longest piece between placeholders) that show up
    in its Spanish render: none should."""
    left = []
    for _, text, *_ in extract_from_file("jinja2", ROOT / "templates/web/staff" / template):
        if isinstance(text, str):
            piece = max(re.split(r"%\(\w+\)s", text), key=len).strip()
            if len(piece) > 3 and str(escape(piece)) in page and piece not in SPANISH_CATALOG.gettext(text):
                left.append(piece)
    return left


def _error_of(page: str, field: str) -> str | None:
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return found and found.group(1)


def test_the_enrol_form_and_its_errors_are_in_spanish(web):
    form = web.get("/visits/new", headers=SPANISH)
    page = form.get_data(as_text=True)
    for words in ("Inscribir tras una sesión", "Nombre del cliente", "Teléfono móvil",
                  "Contraindicaciones", "Fracturas por compresión", "No aplica ninguna",
                  "Dolor antes", "(0 nada, 10 el peor)", "Próxima cita", "+2 semanas",
                  "mié 17 jun, 10:00", "Inscribir y planificar los cuidados"):
        assert words in page, words
    assert _english_left(page, "enrol.html") == []
    refused = web.post("/visits/new", headers=SPANISH, data={
        "name": "Ana Ruiz", "phone": "12", "sms_consent": "on", "language": "en", "pain_before": "11",
        "csrf_token": csrf_token(form)}).get_data(as_text=True)
    assert _error_of(refused, "phone") == ("Escriba un número al que podamos enviar mensajes, "
                                           "como (201) 555-0123")
    assert _error_of(refused, "pain_before") == "Elija un número del 0 al 10"
    assert _error_of(refused, "contraindication") == ("marque las casillas que correspondan, "
                                                      "o «No aplica ninguna»")


def test_the_enrol_form_stays_english_by_default(web):
    form = web.get("/visits/new")
    page = form.get_data(as_text=True)
    for words in ("Client name", "Pain before", "(0 none, 10 worst)", "+1 week<", "+2 weeks",
                  "Wed 17 Jun, 10:00", "Compression fractures", "Enrol and plan aftercare"):
        assert words in page, words
    refused = web.post("/visits/new", data={
        "name": "Ana Ruiz", "phone": "12", "sms_consent": "on", "language": "en",
        "csrf_token": csrf_token(form)}).get_data(as_text=True)
    assert _error_of(refused, "phone") == "Enter a phone number we can text, like (201) 555-0123"
    assert _error_of(refused, "contraindication") == (
        "tick the boxes that apply, or &#34;None of these apply&#34;")
