"""What the service accepts about a client and a visit, from the JSON API, the staff's enrol form
and a CSV import alike: the request models (each error names its field) and the rules for phones,
time zones and languages. The API's own bodies (responses, acknowledgements) are in
service/web/schemas.py; the OpenAPI document (service/web/api/openapi.py) is generated from both."""

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneNumberType
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from service.domain.contraindications import CONTRAINDICATIONS
from service.domain.i18n import N_, reader

LANGUAGES = ("en", "es")
# How late a visit may be enrolled: past this, its aftercare has no use left.
OCCURRED_AT_MAX_AGE = timedelta(days=14)
Channel = Literal["sms", "email"]
Contraindication = Literal[tuple(CONTRAINDICATIONS)]


# C0 controls and DEL: no name, id or address needs them; a line break in an email field is a
# header injection, and PostgreSQL cannot store NUL at all. Fields in MULTILINE keep \t \n \r.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# Why a client's value is refused, in English as the API says it; a staff form reads one back
# (read_reason) and says it in the page's language.
CONTROL_CHARACTERS = N_("must not contain control characters (such as a line break)")
NOT_A_PHONE = N_("not a phone number (%(detail)s)")
NOT_VALID_PHONE = N_("not a valid phone number")
NON_GEOGRAPHIC = N_("satellite and international-network numbers cannot receive aftercare texts")
REFUSED_KIND = N_("%(kind)s numbers cannot receive aftercare texts")
UNKNOWN_ZONE = N_("not a known IANA time zone, e.g. America/New_York")
read_reason = reader(CONTROL_CHARACTERS, NOT_A_PHONE, NOT_VALID_PHONE, NON_GEOGRAPHIC, REFUSED_KIND,
                     UNKNOWN_ZONE)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    MULTILINE: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value, info: ValidationInfo):
        if isinstance(value, str):
            pattern = _CONTROL_MULTILINE if info.field_name in cls.MULTILINE else _CONTROL
            if pattern.search(value):
                raise ValueError(CONTROL_CHARACTERS)
        return value


def _valid_number(value: str, default_region: str) -> phonenumbers.PhoneNumber:
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(NOT_A_PHONE % {"detail": exc.args[0]}) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(NOT_VALID_PHONE)
    return number


def e164(value: str, default_region: str = "US") -> str:
    """Normalise a phone number to E.164, or raise ValueError with a reason a person can act on."""
    return phonenumbers.format_number(_valid_number(value, default_region),
                                      phonenumbers.PhoneNumberFormat.E164)


# Kinds of number that are not a client's own phone: each of our texts to a premium-rate or
# shared-cost number earns its owner money (the SMS pumping a leaked API key invites), and the
# others cannot receive a text or answer a check-in. A valid number is always of some kind, so
# what is not here is a mobile, fixed-line, VoIP or personal number.
_REFUSED_KINDS = {PhoneNumberType.PREMIUM_RATE: N_("premium-rate"),
                  PhoneNumberType.SHARED_COST: N_("shared-cost"),
                  PhoneNumberType.TOLL_FREE: N_("toll-free"), PhoneNumberType.PAGER: N_("pager"),
                  PhoneNumberType.UAN: N_("universal access (UAN)"),
                  PhoneNumberType.VOICEMAIL: N_("voicemail")}


def client_phone(value: str, default_region: str = "US") -> str:
    """A client's phone in E.164, or ValueError naming why it cannot receive aftercare texts.
    Satellite and international-network numbers (+881, +882, ...) belong to no country and are
    billed at satellite rates, whatever kind phonenumbers gives them."""
    number = _valid_number(value, default_region)
    if phonenumbers.region_code_for_number(number) == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        raise ValueError(NON_GEOGRAPHIC)
    kind = _REFUSED_KINDS.get(phonenumbers.number_type(number))
    if kind:
        raise ValueError(REFUSED_KIND % {"kind": kind})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(UNKNOWN_ZONE) from None
    return value


class ClientIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    phone: str | None = Field(default=None, max_length=32, description="E.164, or national (US)")
    email: EmailStr | None = None
    language: Literal["en", "es"] = "en"
    time_zone: str | None = Field(default=None, description="IANA zone; the clinic's by default")
    sms_consent: bool = Field(default=False, description="the client agreed to receive texts")

    _phone = field_validator("phone")(lambda v: v and client_phone(v))
    _zone = field_validator("time_zone")(lambda v: v and check_time_zone(v))


def _in_utc(value: datetime) -> datetime:
    """Every time is stored in UTC: one that has no UTC form (past 9999) is refused here."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range: years 1 to 9999 (in UTC)") from None


Moment = Annotated[AwareDatetime, AfterValidator(_in_utc)]


class AppointmentIn(Strict):
    starts_at: Moment


class VisitIn(Strict):
    external_id: str | None = Field(default=None, min_length=1, max_length=100,
                                    description="the booking system's id; retries are idempotent")
    client: ClientIn
    occurred_at: Moment | None = Field(default=None, description=(
        f"the session; now by default. At most {OCCURRED_AT_MAX_AGE.days} days ago (and not in "
        "the future). A late enrolment sends what is already due at once and leaves out what "
        "is past its use: no window texts once the 24-hour window is over, and a check-in "
        "falling due with the follow-up is not sent separately."))
    visit_number: int | None = Field(default=None, ge=1, le=10_000)
    pain_before: int | None = Field(default=None, ge=0, le=10)
    pain_after: int | None = Field(default=None, ge=0, le=10)
    channels: list[Channel] | None = Field(default=None, min_length=1, max_length=2, description=(
        "by default each message goes once: by SMS when the client has a phone with consent "
        "(and has not opted out), else by email, falling back to the other channel on a "
        "permanent failure or an opt-out. Give both to send each message on both; the "
        "client's own choice on their page comes first."))
    next_appointment: AppointmentIn | None = None
    rebook_weeks: int | None = Field(default=None, ge=1, le=6,
                                     description="no appointment yet: nudge to rebook after N weeks")
    contraindications: list[Contraindication] | None = Field(default=None, description=(
        "the checklist as answered: the boxes that apply, [] for none of them; left out, the "
        "client was not screened. A box never stops the session's aftercare, but holds the "
        "rebooking nudge until the clinic reviews it (pregnancy: for good, and on-call is told)."))

    def digests(self) -> dict[str, str]:
        """A short digest of each field as given but the external id (the client's one by one:
        "client.phone"), times as instants, channels as a set. The enrolment keeps them
        (service/care/enrolment.py) to tell a retry from another request under the same external id
        and to name the fields that differ, without a second copy of the client's data in
        clear."""
        fields = {f"client.{name}": value for name, value in self.client.model_dump().items()}
        # Not screened is left out: digests kept before the checklist came still match.
        fields |= self.model_dump(exclude={"external_id", "client"}
                                  | ({"contraindications"} if self.contraindications is None else set()))
        if fields["channels"]:
            fields["channels"] = sorted(fields["channels"])
        return {name: hashlib.sha256(f"{name}={json.dumps(value, sort_keys=True, default=str)}"
                                     .encode()).hexdigest()[:16]
                for name, value in fields.items()}

    def cross_field_errors(self, now: datetime) -> dict[str, str]:
        """Rules pydantic cannot express per field, keyed by the field a person must fix."""
        errors = {}
        occurred = self.occurred_at or now
        if occurred > now + timedelta(minutes=5):
            errors["occurred_at"] = "is in the future"
        elif occurred < now - OCCURRED_AT_MAX_AGE:
            errors["occurred_at"] = f"is more than {OCCURRED_AT_MAX_AGE.days} days ago"
        if self.next_appointment and self.next_appointment.starts_at <= occurred:
            errors["next_appointment.starts_at"] = "must be after the visit"
        if self.next_appointment and self.rebook_weeks:
            errors["rebook_weeks"] = "give a next appointment or a rebooking interval, not both"
        if self.channels:
            if "sms" in self.channels:
                if not self.client.phone:
                    errors["client.phone"] = "is required to send SMS"
                elif not self.client.sms_consent:
                    errors["client.sms_consent"] = ("must be true to send SMS (record the "
                                                    "client's consent)")
            if "email" in self.channels and not self.client.email:
                errors["client.email"] = "is required to send email"
            if len(set(self.channels)) != len(self.channels):
                errors["channels"] = "lists a channel twice"
        elif not (self.client.phone and self.client.sms_consent) and not self.client.email:
            errors["channels"] = "no channel: give a phone with SMS consent, or an email"
        return errors


def field_errors(exc: ValidationError) -> dict[str, str]:
    """pydantic's errors as {"client.phone": "reason"}."""
    errors = {}
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "body"
        reason = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        errors.setdefault(field, reason.removeprefix("Value error, "))
    return errors
