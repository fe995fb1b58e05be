"""The OpenAPI 3.1 document of /api/v1, generated from the pydantic models in service/web/schemas.py:
requests as they are validated, responses as they are produced (every field required, no other
field allowed). Only the paths are written here.

docs/openapi.json is its published copy, for the booking systems' developers; a test keeps the
two equal (tests/test_contract.py), so that a change of the contract shows in review. After a
change on purpose: `.venv/bin/python -m tests.test_contract > docs/openapi.json`.
"""

from functools import cache

from pydantic.json_schema import models_json_schema

from service.care.schemas import VisitIn
from service.db import MAX_ID
from service.web.api import SCOPE_OF
from service.web.schemas import (
    AcknowledgeIn,
    AuditOut,
    CheckInsOut,
    ClientWithVisitsOut,
    ErrorOut,
    EscalationOut,
    EscalationsOut,
    VisitOut,
)

REF = "#/components/schemas/{model}"
REQUESTS = (VisitIn, AcknowledgeIn)
RESPONSES = (VisitOut, ClientWithVisitsOut, CheckInsOut, EscalationOut, EscalationsOut, AuditOut,
             ErrorOut)
ERRORS = {400: "the body is not a JSON object", 401: "missing, wrong, revoked or expired API key",
          404: "no such row in this clinic", 422: "invalid fields, each named with a reason",
          429: "rate_limited: more than API_RATE_PER_MINUTE requests this minute with this key"}
RETRY_AFTER = {"Retry-After": {"description": "seconds until the next minute", "required": True,
                               "schema": {"type": "integer", "minimum": 1}}}


def _ref(model) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(view: str, *statuses: int, **described: str) -> dict:
    """Error responses of an operation behind an API key: the usual reasons by status, 403 for
    a key without the view's scope (SCOPE_OF), or {"409": reason} for a route's own."""
    reasons = ({str(status): ERRORS[status] for status in statuses}
               | {"403": f"forbidden: this key lacks the '{SCOPE_OF[view]}' scope"} | described)
    responses = {status: _json(ErrorOut, reason) for status, reason in reasons.items()}
    if "429" in responses:
        responses["429"]["headers"] = RETRY_AFTER
    return responses


def _id_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID}}


def _read(view: str, summary: str, parameter: str, model, description: str) -> dict:
    return {"get": {"summary": summary, "parameters": [_id_param(parameter)],
                    "responses": {"200": _json(model, description),
                                  **_errors(view, 401, 404, 429)}}}


@cache
def openapi_document() -> dict:
    _, schemas = models_json_schema([(model, "validation") for model in REQUESTS] +
                                    [(model, "serialization") for model in RESPONSES],
                                    ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Aftercare API", "version": "1.0.0",
                 "description": "Enrol visits from a clinic's booking system."},
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"apiKey": {
                "type": "http", "scheme": "bearer",
                "description": "An API key of the clinic, holding scopes: each operation needs "
                               "one (enrol, read, acknowledge or audit), else 403."}},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/api/v1/visits": {"post": {
                "summary": "Enrol a visit: plan and queue its aftercare messages",
                "description": "Idempotent on external_id: a retry of the same request returns "
                               "the first result (200); another request with an external_id "
                               "already used is refused (409), naming each field that differs.",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref(VisitIn)}}},
                "responses": {"201": _json(VisitOut, "enrolled"),
                              "200": _json(VisitOut, "already enrolled by the same request "
                                                     "(same external_id and fields)"),
                              **_errors("create_visit", 400, 401, 422, 429, **{"409": (
                                  "idempotency_conflict: the external_id was first used with "
                                  "other fields (in `fields`)")})},
            }},
            "/api/v1/visits/{visit_id}": _read(
                "get_visit", "A visit with its planned messages", "visit_id", VisitOut, "the visit"),
            "/api/v1/clients/{client_id}": _read(
                "get_client", "A client with their visits", "client_id", ClientWithVisitsOut, "the client"),
            "/api/v1/clients/{client_id}/checkins": _read(
                "client_checkins", "The client's check-ins (SMS replies and the aftercare page)", "client_id",
                CheckInsOut, "check-ins, oldest first"),
            "/api/v1/clients/{client_id}/escalations": _read(
                "client_escalations", "The client's escalations", "client_id", EscalationsOut,
                "escalations, oldest first"),
            "/api/v1/clients/{client_id}/audit": _read(
                "client_audit", "The client's audit log: messages in, interpretations, escalations",
                "client_id", AuditOut, "events, oldest first"),
            "/api/v1/escalations/{escalation_id}/acknowledge": {"post": {
                "summary": "Acknowledge an escalation: stops the re-notifications",
                "parameters": [_id_param("escalation_id")],
                "requestBody": {"required": False, "content": {"application/json": {
                    "schema": _ref(AcknowledgeIn)}}},
                "responses": {"200": _json(EscalationOut, "acknowledged"),
                              **_errors("acknowledge_escalation", 400, 401, 404, 422, 429,
                                        **{"409": "acknowledged already"})},
            }},
            "/api/v1/openapi.json": {"get": {
                "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }},
        },
    }
