"""Marks text for translation where it is written outside a request (gettext_noop): `make i18n`
extracts every N_("...") and the page that shows the text translates it with _(). The care and
domain layers stay free of Flask and Babel this way."""

import re
from collections.abc import Callable


def N_(text: str) -> str:  # gettext's own name for it, which the extractor knows
    return text


def Nn_(singular: str, plural: str) -> tuple[str, str]:  # ngettext's: extracted as N_'s is
    """A sentence that names a number (as %(num)s), as its singular and plural msgids: the page
    chooses with ngettext."""
    return singular, plural


def reader(*msgids: str) -> Callable[[str], tuple[str, dict[str, str]] | None]:
    """Reads an English text written from one of msgids (msgid % values) back into the msgid and
    its values, so a page can say it in its own language; None for a text written otherwise."""
    patterns = []
    for msgid in msgids:
        pieces = re.split(r"%\((\w+)\)s", msgid)  # text, name, text, name, ..., text
        patterns.append((msgid, re.compile("".join(
            f"(?P<{piece}>.+)" if i % 2 else re.escape(piece) for i, piece in enumerate(pieces)))))

    def read(text: str) -> tuple[str, dict[str, str]] | None:
        for msgid, pattern in patterns:
            if found := pattern.fullmatch(text):
                return msgid, found.groupdict()
        return None
    return read
