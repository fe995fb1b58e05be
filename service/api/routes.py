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
from service.models import Appointment, Client, Message, Visit, utcnow
from service.schemas import VisitIn, field_errors


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
    visit, created = enrol(db.session(), g.clinic, data, now, actor="api")
    return jsonify(visit_json(visit)), 201 if created else 200


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
    return jsonify({**client_json(client), "visits": [_visit_fields(v) for v in visits]})


def _owned(model, row_id: int):
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
    messages = session.exec(
        select(Message).where(Message.visit_id == visit.id).order_by(Message.due_at, Message.id)
    ).all()
    return {
        **_visit_fields(visit),
        "client": client_json(session.get(Client, visit.client_id)),
        "appointment": appointment and {
            "id": appointment.id, "starts_at": appointment.starts_at.isoformat(),
            "status": appointment.status,
        },
        "messages": [
            {"id": m.id, "kind": m.kind, "channel": m.channel, "due_at": m.due_at.isoformat(),
             "status": m.status}
            for m in messages
        ],
    }
