"""Every string of the web pages, and every one marked in the code (_(), lazy_gettext(), N_()),
has its Spanish translation, and the compiled catalog the app loads matches the .po file (run
`make i18n` after changing either)."""

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from service.config import ROOT

TRANSLATIONS = ROOT / "service" / "translations" / "es" / "LC_MESSAGES"


def _po():
    with open(TRANSLATIONS / "messages.po", "rb") as f:
        return read_po(f, locale="es")


def test_every_string_in_the_pages_is_translated():
    pages = extract_from_dir(ROOT / "templates" / "web", method_map=[("**.html", "jinja2")])
    code = extract_from_dir(ROOT / "service", method_map=[("**.py", "python")],
                            keywords={**DEFAULT_KEYWORDS, "lazy_gettext": None, "Nn_": (1, 2)})
    extracted = {entry[2] for entry in [*pages, *code]}
    catalog = _po()
    missing = [text for text in extracted if not (catalog.get(text) and catalog.get(text).string)]
    assert missing == []


def _entries(catalog) -> dict:
    """id -> string; a plural message's id and strings are sequences (lists in a .po, tuples in
    a .mo), compared as tuples."""
    def plain(value):
        return tuple(value) if isinstance(value, list | tuple) else value
    return {plain(m.id): plain(m.string) for m in catalog if m.id}


def test_the_compiled_catalog_is_up_to_date():
    with open(TRANSLATIONS / "messages.mo", "rb") as f:
        compiled = _entries(read_mo(f))
    assert compiled == _entries(_po())
