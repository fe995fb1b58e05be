"""Every client-facing string of the web pages has its Spanish translation, and the compiled
catalog the app loads matches the .po file (run `make i18n` after changing either)."""

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from service.config import ROOT

TRANSLATIONS = ROOT / "service" / "translations" / "es" / "LC_MESSAGES"


def _po():
    with open(TRANSLATIONS / "messages.po", "rb") as f:
        return read_po(f, locale="es")


def test_every_string_in_the_pages_is_translated():
    extracted = {entry[2] for entry in extract_from_dir(ROOT / "templates" / "web",
                                                         method_map=[("**.html", "jinja2")])}
    catalog = _po()
    missing = [text for text in extracted if not (catalog.get(text) and catalog.get(text).string)]
    assert missing == []


def test_the_compiled_catalog_is_up_to_date():
    with open(TRANSLATIONS / "messages.mo", "rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id}
    assert compiled == {m.id: m.string for m in _po() if m.id}
