"""Phone numbers as people read and tap them: "(202) 555-0100" for someone in the US, the
international form for a number from another country, and `tel:` links in E.164.

Numbers are stored in E.164 (schemas.e164); this module only formats them for display. No Flask
and no database: the web pages, the message templates and the domain may all use it.
"""

import phonenumbers
from phonenumbers import PhoneNumberFormat, shortnumberinfo

DEFAULT_REGION = "US"
# National numbers first (112 also works in many of those regions, but people know theirs);
# phonenumbers' own metadata says which one is the region's emergency number.
_EMERGENCY_CANDIDATES = ("911", "999", "000", "111", "119", "112")


def region_of(number: str | None, default: str = DEFAULT_REGION) -> str:
    """The region a number belongs to ("US", "ES", ...): where the person holding it reads from."""
    parsed = _parse(number)
    region = parsed and phonenumbers.region_code_for_number(parsed)
    return region if region and region != "ZZ" else default


def display(number: str | None, region: str | None = None) -> str:
    """National format when the number is from the reader's region, international otherwise;
    anything unparseable is returned as it was."""
    parsed = _parse(number)
    if parsed is None:
        return number or ""
    reader = region or phonenumbers.region_code_for_number(parsed)
    if phonenumbers.region_code_for_number(parsed) == reader:
        return phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)


def tel_href(number: str | None) -> str:
    """A `tel:` URI (E.164, or the short number as it is, e.g. tel:911)."""
    parsed = _parse(number)
    if parsed is None:
        return f"tel:{''.join(c for c in number or '' if c.isdigit() or c == '+')}"
    return "tel:" + phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def emergency_number(region: str = DEFAULT_REGION) -> str:
    """The region's emergency services number (911 in the US, 112 in Spain)."""
    for candidate in _EMERGENCY_CANDIDATES:
        if shortnumberinfo.is_emergency_number(candidate, region):
            return candidate
    return "112"


def _parse(number: str | None) -> phonenumbers.PhoneNumber | None:
    if not number or not number.startswith("+"):
        return None
    try:
        return phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
