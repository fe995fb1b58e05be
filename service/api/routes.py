"""Endpoints of /api/v1. Every query is scoped to the API key's clinic: another clinic's rows are 404."""

from functools import wraps

from flask import abort, g, jsonify, request
from pydantic import ValidationError
from sqlmodel import select

from service import db
from service.api import bp
from service.api.openapi import openapi_document
from service.apikeys import clinic_for
from service.domain.careplan import window_ends_at
from service.enrolment import enrol
from service.escalations import acknowledge
from service.maintenance import suggestion_for
from service.models import Appointment, AuditEvent, CheckIn, Client, Escalation, Message, Visit, utcnow
from service.schemas import AcknowledgeIn, VisitIn, field_errors


def require_api_key(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        clinic = clinic_for(db.session(), raw.strip()) if scheme.lower() == "bearer" else None
        if clinic is None:
            return error(401, "unauthorized", "a valid API key is required: Authorization: Bearer <key>")
        g.clinic = clinic
        return view(*args, **kwargs)

    return wrapper


def error(status: int, code: str, message: str, fields: dict | None = None):
    body = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    return jsonify(body), status


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@bp.post("/visits")
@require_api_key
def create_visit():
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return error(400, "invalid_json", "the body must be a JSON object")
    now = utcnow()
    try:
        data = VisitIn.model_validate(payload)
    except ValidationError as exc:
        return error(422, "validation_failed", "some fields are invalid", field_errors(exc))
    if problems := data.cross_field_errors(now):
        return error(422, "validation_failed", "some fields are invalid", problems)
    visit, written = enrol(db.session(), g.clinic, data, now, actor="api")
    if written is None:  # a retry: answer with the visit as stored
        return jsonify(visit_json(visit)), 200
    return jsonify(_visit_body(visit, written.client, written.appointment, written.messages)), 201


@bp.get("/visits/<int:visit_id>")
@require_api_key
def get_visit(visit_id: int):
    return jsonify(visit_json(_owned(Visit, visit_id)))


@bp.get("/clients/<int:client_id>")
@require_api_key
def get_client(client_id: int):
    client = _owned(Client, client_id)
    visits = db.session().exec(
        select(Visit).where(Visit.client_id == client.id).order_by(Visit.occurred_at)
    ).all()
    suggestion = suggestion_for(db.session(), client)
    return jsonify({**client_json(client), "visits": [_visit_fields(v) for v in visits],
                    "suggested_interval": {"weeks": suggestion.weeks, "reason": suggestion.reason}})


@bp.get("/clients/<int:client_id>/checkins")
@require_api_key
def client_checkins(client_id: int):
    client = _owned(Client, client_id)
    rows = db.session().exec(select(CheckIn).where(CheckIn.client_id == client.id)
                             .order_by(CheckIn.created_at)).all()
    return jsonify({"checkins": [
        {"id": c.id, "visit_id": c.visit_id, "answer": c.answer, "pain": c.pain,
         "source": c.source, "at": c.created_at.isoformat()} for c in rows]})


@bp.get("/clients/<int:client_id>/escalations")
@require_api_key
def client_escalations(client_id: int):
    client = _owned(Client, client_id)
    rows = db.session().exec(select(Escalation).where(Escalation.client_id == client.id)
                             .order_by(Escalation.opened_at)).all()
    return jsonify({"escalations": [escalation_json(e) for e in rows]})


@bp.get("/clients/<int:client_id>/audit")
@require_api_key
def client_audit(client_id: int):
    client = _owned(Client, client_id)
    rows = db.session().exec(select(AuditEvent).where(AuditEvent.client_id == client.id)
                             .order_by(AuditEvent.created_at, AuditEvent.id)).all()
    return jsonify({"events": [
        {"at": e.created_at.isoformat(), "actor": e.actor, "action": e.action,
         "detail": e.detail} for e in rows]})


@bp.post("/escalations/<int:escalation_id>/acknowledge")
@require_api_key
def acknowledge_escalation(escalation_id: int):
    row = _owned(Escalation, escalation_id)
    payload = request.get_json(silent=True)
    if payload is None and request.content_length:
        return error(400, "invalid_json", "the body must be a JSON object")
    try:
        data = AcknowledgeIn.model_validate(payload or {})
    except ValidationError as exc:
        return error(422, "validation_failed", "some fields are invalid", field_errors(exc))
    if row.status != "open":
        return error(409, "already_acknowledged", "this escalation was acknowledged already")
    acknowledge(db.session(), row, utcnow(), actor="api", note=data.note)
    db.session().commit()
    return jsonify(escalation_json(row))


def escalation_json(row: Escalation) -> dict:
    return {
        "id": row.id, "client_id": row.client_id, "severity": row.severity,
        "status": row.status, "reasons": row.reasons, "opened_at": row.opened_at.isoformat(),
        "notify_count": row.notify_count,
        "unanswered": row.status == "open" and row.notify_count >= g.clinic.renotify_max,
        "acknowledged_at": row.acknowledged_at and row.acknowledged_at.isoformat(),
        "note": row.ack_note,
    }


MAX_ID = 2**31 - 1  # ids are PostgreSQL integers; a bigger one would overflow the query


def _owned(model, row_id: int):
    if row_id > MAX_ID:
        abort(404)
    row = db.session().get(model, row_id)
    if row is None or row.clinic_id != g.clinic.id:
        abort(404)
    return row


def client_json(client: Client) -> dict:
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
        "occurred_at": visit.occurred_at.isoformat(),
        "window_ends_at": window_ends_at(visit.occurred_at).isoformat(),
        "visit_number": visit.visit_number, "pain_before": visit.pain_before,
        "pain_after": visit.pain_after, "channels": visit.channels,
    }


def visit_json(visit: Visit) -> dict:
    session = db.session()
    appointment = session.exec(select(Appointment).where(Appointment.visit_id == visit.id)).first()
    messages = session.exec(select(Message).where(Message.visit_id == visit.id)).all()
    return _visit_body(visit, session.get(Client, visit.client_id), appointment, messages)


def _visit_body(visit: Visit, client: Client, appointment: Appointment | None, messages) -> dict:
    """A visit with its client, appointment and messages (rows or objects with id, kind, channel,
    due_at and status): what a new enrolment wrote, or what visit_json read."""
    return {
        **_visit_fields(visit),
        "client": client_json(client),
        "appointment": appointment and {
            "id": appointment.id, "starts_at": appointment.starts_at.isoformat(),
            "status": appointment.status,
        },
        "messages": [
            {"id": m.id, "kind": m.kind, "channel": m.channel, "due_at": m.due_at.isoformat(),
             "status": m.status}
            for m in sorted(messages, key=lambda m: (m.due_at, m.id))
        ],
    }
