"""The enrol form's errors in words a receptionist acts on, all at once, keyed by the form's field.
The API keeps pydantic's exact reasons (service/care/schemas.py); a person at a desk wants to
know what to enter, not which validator failed. Written once here: every field's words, by the
pydantic error type where the type changes what to do ("rule" is a cross-field rule's, "refused"
a valid number of a kind we never text, whose reason is kept)."""

import phonenumbers
from flask_babel import LazyString, lazy_gettext
from flask_babel import gettext as _
from pydantic import ValidationError

from service.care import schemas
from service.domain.i18n import N_, reader

ANY = "*"
# Translated when shown (lazy): %(phone)s and %(reason)s are filled in then.
WORDS: dict[str, dict[str, LazyString]] = {
    "name": {"string_too_long": lazy_gettext("Shorten the name to 120 characters or fewer"),
             ANY: lazy_gettext("Enter the client's name")},
    "phone": {"refused": lazy_gettext(
                  "We cannot text this number (%(reason)s). Enter a mobile number, like %(phone)s"),
              ANY: lazy_gettext("Enter a phone number we can text, like %(phone)s")},
    "email": {ANY: lazy_gettext("Enter an email address, like name@example.com")},
    "sms_consent": {ANY: lazy_gettext("Tick this once the client agrees to receive texts")},
    "channels": {ANY: lazy_gettext("Enter a phone number the client agreed to get texts on, or an email")},
    "pain_before": {ANY: lazy_gettext("Choose a number from 0 to 10")},
    "pain_after": {ANY: lazy_gettext("Choose a number from 0 to 10")},
    "next_appointment": {"rule": lazy_gettext("Choose a time after this session"),
                         "value_error": lazy_gettext("Choose a date within the years 1 to 9999"),
                         ANY: lazy_gettext("Enter a date and time, like 2026-03-14 10:30")},
    "rebook_weeks": {"rule": lazy_gettext("Choose a next appointment or a rebooking reminder, not both"),
                     ANY: lazy_gettext("Choose from 1 to 6 weeks")},
    "occurred_at": {ANY: lazy_gettext("Enrol within 14 days of the session, and not ahead of it")},
}
CHECK = lazy_gettext("Check this field")


def _field(location: str) -> str:
    """"client.phone" -> "phone", "next_appointment.starts_at" -> "next_appointment"."""
    parts = location.split(".")
    return parts[1] if parts[0] == "client" and len(parts) > 1 else parts[0]


def _kind(error: dict) -> str:
    refused = error["type"] == "value_error" and "cannot receive" in error["msg"]
    return "refused" if refused else error["type"]


def plain_errors(region: str, exc: ValidationError | None = None,
                 rules: dict[str, str] | None = None) -> dict[str, str]:
    """pydantic's errors (exc) and the cross-field rules' (VisitIn.cross_field_errors) as
    {field: words}, the first error of each field."""
    found = [(".".join(str(p) for p in e["loc"]), _kind(e), e["msg"].removeprefix("Value error, "))
             for e in exc.errors()] if exc else []
    found += [(location, "rule", reason) for location, reason in (rules or {}).items()]
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    phone = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL) \
        if example else "+1 202 555 0143"
    errors: dict[str, str] = {}
    for location, kind, reason in found:
        field = _field(location)
        words = WORDS.get(field, {ANY: CHECK})
        errors.setdefault(field, str(words.get(kind, words[ANY])) % {"phone": phone, "reason": reason})
    return errors


# pydantic's own reasons about a client's details, in its English (the API gives them so), read
# back like schemas.read_reason's so the details form says them in the page's language.
_read_pydantic = reader(N_("String should have at least %(min_length)s character"),
                        N_("String should have at most %(max_length)s characters"),
                        N_("Input should be %(expected)s"),
                        N_("value is not a valid email address: %(reason)s"))


def in_page_language(errors: dict[str, str]) -> dict[str, str]:
    """The details form's errors ({field: the API's English reason}) in the page's language, a
    refused phone's kind too; a reason neither reader knows is shown as written."""
    said = {}
    for field, reason in errors.items():
        read = schemas.read_reason(reason) or _read_pydantic(reason)
        if read is None:
            said[field] = reason
            continue
        msgid, values = read
        said[field] = _(msgid, **{name: _(value) if name == "kind" else value
                                  for name, value in values.items()})
    return said
