"""Endpoints of /api/v1. Every query is scoped to the API key's clinic: another clinic's rows are 404.
Every body, an error's too, is produced through its model in service/web/schemas.py, which the OpenAPI
document is generated from."""

from functools import wraps

from flask import abort, current_app, g, jsonify, make_response, request
from pydantic import ValidationError
from sqlmodel import select

from service import db
from service.accounts.apikeys import PREFIX_LENGTH, OverRate, caller
from service.care import audit
from service.care.enrolment import IdempotencyConflict, enrol
from service.care.escalations import acknowledge
from service.care.maintenance import suggestion_for
from service.care.schemas import VisitIn, field_errors
from service.care.scope import mine, owned, theirs
from service.domain.careplan import window_ends_at
from service.models import (
    Appointment,
    AuditEvent,
    CheckIn,
    Client,
    Escalation,
    Message,
    StaffUser,
    Visit,
    utcnow,
)
from service.web.api import SCOPE_OF, bp
from service.web.api.openapi import openapi_document
from service.web.schemas import (
    AcknowledgeIn,
    AppointmentOut,
    AuditEventOut,
    AuditOut,
    CheckInOut,
    CheckInsOut,
    ClientOut,
    ClientWithVisitsOut,
    ErrorOut,
    EscalationOut,
    EscalationsOut,
    MessageOut,
    Out,
    SuggestedIntervalOut,
    VisitOut,
    VisitSummaryOut,
)


def require_api_key(view):
    """A valid key (401), under its rate (429), holding the scope SCOPE_OF names for the view
    (403). A view missing from SCOPE_OF fails here, as the app starts."""
    scope = SCOPE_OF[view.__name__]

    @wraps(view)
    def wrapper(*args, **kwargs):
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        rate = current_app.config["API_RATE_PER_MINUTE"]
        try:
            found = (caller(db.session(), raw.strip(), utcnow(), rate)
                     if scheme.lower() == "bearer" else None)
        except OverRate as over:
            response = error(429, "rate_limited", f"more than {rate} requests a minute with this "
                             f"key: retry in {over.retry_after} s")
            response.headers["Retry-After"] = str(over.retry_after)
            return response
        if found is None:
            return error(401, "unauthorized", "a valid API key is required: Authorization: Bearer <key>")
        if scope not in found.scopes:
            return error(403, "forbidden", f"this key lacks the {scope!r} scope")
        g.clinic, g.actor = found.clinic, f"api:{raw.strip()[:PREFIX_LENGTH]}"
        response = make_response(view(*args, **kwargs))
        if request.method == "GET" and response.status_code == 200:  # the access log: who read what
            audit.record(db.session(), "api_read", clinic_id=g.clinic.id, actor=g.actor,
                         client_id=kwargs.get("client_id"), path=request.path)
            db.session().commit()
        return response

    return wrapper


def respond(body: Out, status: int = 200, exclude_none: bool = False):
    return current_app.response_class(body.model_dump_json(exclude_none=exclude_none),
                                      status=status, mimetype="application/json")


def error(status: int, code: str, message: str, fields: dict | None = None):
    """An error's body; `fields` is left out when there are none."""
    return respond(ErrorOut(error=code, message=message, fields=fields or None), status,
                   exclude_none=True)


def json_object() -> dict | None:
    """The request's JSON body if it is an object. JSON nested deeper than Python's stack counts
    as no JSON (security.JSONProvider), as does anything unreadable."""
    payload = request.get_json(silent=True)
    return payload if isinstance(payload, dict) else None


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@bp.post("/visits")
@require_api_key
def create_visit():
    payload = json_object()
    if payload is None:
        return error(400, "invalid_json", "the body must be a JSON object")
    now = utcnow()
    try:
        data = VisitIn.model_validate(payload)
    except ValidationError as exc:
        return error(422, "validation_failed", "some fields are invalid", field_errors(exc))
    if problems := data.cross_field_errors(now):
        return error(422, "validation_failed", "some fields are invalid", problems)
    try:
        visit, written = enrol(db.session(), g.clinic, data, now, actor=g.actor)
    except IdempotencyConflict as conflict:
        return error(409, "idempotency_conflict",
                     f"external_id {data.external_id!r} was first used for visit "
                     f"{conflict.visit.id} with other values: a new visit needs a new external_id",
                     dict.fromkeys(conflict.fields, "differs from the first request with this "
                                                    "external_id"))
    if written is None:  # a retry: answer with the visit as stored
        return respond(visit_out(visit), 200)
    return respond(_visit_out(visit, written.client, written.appointment, written.messages), 201)


@bp.get("/visits/<int:visit_id>")
@require_api_key
def get_visit(visit_id: int):
    return respond(visit_out(_owned(Visit, visit_id)))


@bp.get("/clients/<int:client_id>")
@require_api_key
def get_client(client_id: int):
    client = _owned(Client, client_id)
    visits = db.session().exec(
        select(Visit).where(theirs(Visit, client)).order_by(Visit.occurred_at)
    ).all()
    suggestion = suggestion_for(db.session(), client)
    return respond(ClientWithVisitsOut(
        **_client_fields(client), visits=[_visit_summary(v) for v in visits],
        suggested_interval=SuggestedIntervalOut(weeks=suggestion.weeks,
                                                reason=suggestion.reason)))


@bp.get("/clients/<int:client_id>/checkins")
@require_api_key
def client_checkins(client_id: int):
    client = _owned(Client, client_id)
    rows = db.session().exec(select(CheckIn).where(theirs(CheckIn, client))
                             .order_by(CheckIn.created_at)).all()
    return respond(CheckInsOut(checkins=[
        CheckInOut(id=c.id, visit_id=c.visit_id, answer=c.answer, pain=c.pain, source=c.source,
                   at=c.created_at) for c in rows]))


@bp.get("/clients/<int:client_id>/escalations")
@require_api_key
def client_escalations(client_id: int):
    client = _owned(Client, client_id)
    rows = db.session().exec(select(Escalation).where(theirs(Escalation, client))
                             .order_by(Escalation.opened_at)).all()
    return respond(EscalationsOut(escalations=[escalation_out(e) for e in rows]))


@bp.get("/clients/<int:client_id>/audit")
@require_api_key
def client_audit(client_id: int):
    client = _owned(Client, client_id)
    rows = db.session().exec(select(AuditEvent).where(theirs(AuditEvent, client))
                             .order_by(AuditEvent.created_at, AuditEvent.id)).all()
    return respond(AuditOut(events=[
        AuditEventOut(at=e.created_at, actor=e.actor, action=e.action, detail=e.detail)
        for e in rows]))


@bp.post("/escalations/<int:escalation_id>/acknowledge")
@require_api_key
def acknowledge_escalation(escalation_id: int):
    row = _owned(Escalation, escalation_id)
    payload = json_object()
    if payload is None and request.content_length:
        return error(400, "invalid_json", "the body must be a JSON object")
    try:
        data = AcknowledgeIn.model_validate(payload or {})
    except ValidationError as exc:
        return error(422, "validation_failed", "some fields are invalid", field_errors(exc))
    if row.status != "open":
        return error(409, "already_acknowledged", "this escalation was acknowledged already")
    acknowledge(db.session(), row, utcnow(), actor=g.actor, note=data.note)
    db.session().commit()
    return respond(escalation_out(row))


def escalation_out(row: Escalation) -> EscalationOut:
    by = row.acknowledged_by_id and db.session().get(StaffUser, row.acknowledged_by_id)  # cached
    return EscalationOut(
        id=row.id, client_id=row.client_id, severity=row.severity, status=row.status,
        reasons=row.reasons, opened_at=row.opened_at, notify_count=row.notify_count,
        unanswered=row.unanswered(g.clinic.renotify_max),
        acknowledged_at=row.acknowledged_at, note=row.ack_note,
        acknowledged_by=by.name if by else None,
    )


def _owned(model, row_id: int):
    """The clinic's row, else 404 (ids past db.MAX_ID never get here: the route's <int:> stops
    them)."""
    row = owned(db.session(), model, g.clinic.id, row_id)
    if row is None:
        abort(404)
    return row


def _client_fields(client: Client) -> dict:
    return {
        "id": client.id, "name": client.name, "phone": client.phone, "email": client.email,
        "language": client.language, "time_zone": client.time_zone,
        "sms_consent": client.sms_consent_at is not None,
        "sms_opted_out": client.sms_opted_out_at is not None,
        "baseline_pain": client.baseline_pain,
    }


def _visit_fields(visit: Visit) -> dict:
    return {
        "id": visit.id, "external_id": visit.external_id, "client_id": visit.client_id,
        "occurred_at": visit.occurred_at, "window_ends_at": window_ends_at(visit.occurred_at),
        "visit_number": visit.visit_number, "pain_before": visit.pain_before,
        "pain_after": visit.pain_after, "channels": visit.channels,
    }


def _visit_summary(visit: Visit) -> VisitSummaryOut:
    return VisitSummaryOut(**_visit_fields(visit))


def visit_out(visit: Visit) -> VisitOut:
    session = db.session()
    appointment = session.exec(mine(Appointment, visit.clinic_id)
                               .where(Appointment.visit_id == visit.id)).first()
    messages = session.exec(mine(Message, visit.clinic_id).where(Message.visit_id == visit.id)).all()
    return _visit_out(visit, session.get(Client, visit.client_id), appointment, messages)


def _visit_out(visit: Visit, client: Client, appointment: Appointment | None, messages) -> VisitOut:
    """A visit with its client, appointment and messages (rows or objects with id, kind, channel,
    due_at and status): what a new enrolment wrote, or what visit_out read."""
    return VisitOut(
        **_visit_fields(visit),
        client=ClientOut(**_client_fields(client)),
        appointment=appointment and AppointmentOut(id=appointment.id,
                                                   starts_at=appointment.starts_at,
                                                   status=appointment.status),
        messages=[MessageOut(id=m.id, kind=m.kind, channel=m.channel, due_at=m.due_at,
                             status=m.status)
                  for m in sorted(messages, key=lambda m: (m.due_at, m.id))],
    )
