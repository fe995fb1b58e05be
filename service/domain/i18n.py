"""Marks text for translation where it is written outside a request (gettext_noop): `make i18n`
extracts every N_("...") and the page that shows the text translates it with _(). The care and
domain layers stay free of Flask and Babel this way."""


def N_(text: str) -> str:  # gettext's own name for it, which the extractor knows
    return text
