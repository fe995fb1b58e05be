"""The JSON API's own bodies: responses and acknowledgements, the one source of its contract with the
request models of service/care/schemas.py. Responses are produced through these models, and the
OpenAPI document (service/web/api/openapi.py) is generated from them."""

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from service.care.schemas import Channel, Strict


class AcknowledgeIn(Strict):
    MULTILINE: ClassVar[frozenset[str]] = frozenset({"note"})
    note: str | None = Field(default=None, max_length=500, description="what staff did")


# --- responses ----------------------------------------------------------------------------------

# Times as Python writes them ("2026-06-10T14:00:00+00:00"), as this API always has.
Timestamp = Annotated[AwareDatetime, PlainSerializer(datetime.isoformat, return_type=str),
                      WithJsonSchema({"type": "string", "format": "date-time"})]


class Out(BaseModel):
    """A response body: every field present (null where it may be empty), no other field. A
    route builds it field by field, so a renamed or forgotten field fails at once."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(Out):
    error: str = Field(description="a stable code, e.g. validation_failed, idempotency_conflict")
    message: str = Field(description="what went wrong, for a person")
    fields: dict[str, str] | SkipJsonSchema[None] = Field(default=None, description=(
        'the reason per field, dotted for nested ones, e.g. {"client.phone": "..."}'))


class ClientOut(Out):
    id: int
    name: str
    phone: str | None = Field(description="E.164")
    email: str | None = Field(json_schema_extra={"format": "email"})
    language: Literal["en", "es"]
    time_zone: str = Field(description="IANA zone")
    sms_consent: bool
    sms_opted_out: bool = Field(description="the client texted STOP (or opted out on their page)")
    baseline_pain: int | None = Field(description="the pain score before the first visit, 0-10")


class VisitSummaryOut(Out):
    id: int
    external_id: str | None
    client_id: int
    occurred_at: Timestamp
    window_ends_at: Timestamp = Field(description="the end of the 24-hour window")
    visit_number: int
    pain_before: int | None
    pain_after: int | None
    channels: list[Channel] = Field(description="the channels chosen at enrolment (one by "
                                                "default); the messages show where each one goes now")


class MessageOut(Out):
    id: int
    kind: str
    channel: Channel
    due_at: Timestamp
    status: str


class AppointmentOut(Out):
    id: int
    starts_at: Timestamp
    status: str


class VisitOut(VisitSummaryOut):
    client: ClientOut
    appointment: AppointmentOut | None
    messages: list[MessageOut] = Field(description="the planned messages, in the order they are due")


class SuggestedIntervalOut(Out):
    weeks: int | None
    reason: str


class ClientWithVisitsOut(ClientOut):
    visits: list[VisitSummaryOut]
    suggested_interval: SuggestedIntervalOut


class CheckInOut(Out):
    id: int
    visit_id: int | None
    answer: str | None
    pain: int | None
    source: str
    at: Timestamp


class CheckInsOut(Out):
    checkins: list[CheckInOut] = Field(description="oldest first")


class EscalationOut(Out):
    id: int
    client_id: int
    severity: Literal["concern", "urgent"]
    status: Literal["open", "acknowledged"]
    reasons: list[str]
    opened_at: Timestamp
    notify_count: int
    unanswered: bool = Field(description="every re-notification sent, still open")
    acknowledged_at: Timestamp | None
    acknowledged_by: str | None = Field(description="the staff member who acknowledged it; null "
                                                    "when open or acknowledged through the API")
    note: str | None


class EscalationsOut(Out):
    escalations: list[EscalationOut] = Field(description="oldest first")


class AuditEventOut(Out):
    at: Timestamp
    actor: str
    action: str
    detail: dict[str, Any] = Field(description="what the action needs to be understood; its "
                                               "keys depend on the action")


class AuditOut(Out):
    events: list[AuditEventOut] = Field(description="oldest first")
