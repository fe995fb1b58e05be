"""The OpenAPI 3.1 document of /api/v1; request schemas come straight from the pydantic models."""

from functools import cache

from service.schemas import AcknowledgeIn, VisitIn

REF = "#/components/schemas/{model}"

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "reason per invalid field, e.g. {\"client.phone\": \"...\"}"},
    },
}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_INT = {"type": ["integer", "null"]}
_CLIENT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "phone": {"type": ["string", "null"]}, "email": {"type": ["string", "null"]},
        "language": {"type": "string"}, "time_zone": {"type": "string"},
        "sms_consent": {"type": "boolean"}, "sms_opted_out": {"type": "boolean"},
        "baseline_pain": _NULLABLE_INT,
    },
}
_VISIT_FIELDS = {
    "id": {"type": "integer"}, "external_id": {"type": ["string", "null"]},
    "client_id": {"type": "integer"}, "occurred_at": _TIME, "window_ends_at": _TIME,
    "visit_number": {"type": "integer"}, "pain_before": _NULLABLE_INT, "pain_after": _NULLABLE_INT,
    "channels": {"type": "array", "items": {"type": "string"},
                 "description": "the channels chosen at enrolment (one by default); the messages "
                                "show where each one goes now"},
}
_MESSAGE = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "kind": {"type": "string"},
                   "channel": {"type": "string"}, "due_at": _TIME, "status": {"type": "string"}},
}
_VISIT = {
    "type": "object",
    "properties": {
        **_VISIT_FIELDS,
        "client": {"$ref": "#/components/schemas/Client"},
        "appointment": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
            "id": {"type": "integer"}, "starts_at": _TIME, "status": {"type": "string"}}}]},
        "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
    },
}
_CLIENT_WITH_VISITS = {"allOf": [
    {"$ref": "#/components/schemas/Client"},
    {"type": "object", "properties": {
        "visits": {"type": "array", "items": {"type": "object", "properties": _VISIT_FIELDS}},
        "suggested_interval": {"type": "object", "properties": {
            "weeks": _NULLABLE_INT, "reason": {"type": "string"}}},
    }},
]}
_ESCALATION = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"}, "client_id": {"type": "integer"},
        "severity": {"enum": ["concern", "urgent"]}, "status": {"enum": ["open", "acknowledged"]},
        "reasons": {"type": "array", "items": {"type": "string"}}, "opened_at": _TIME,
        "notify_count": {"type": "integer"},
        "unanswered": {"type": "boolean", "description": "every re-notification sent, still open"},
        "acknowledged_at": {"type": ["string", "null"], "format": "date-time"},
        "note": {"type": ["string", "null"]},
    },
}


def _list_of(key: str, item: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {
        "type": "object", "properties": {key: {"type": "array", "items": item}}}}}}


def _json(schema_name: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema_name}"}}}}


def _errors(*statuses: int) -> dict:
    reasons = {400: "the body is not a JSON object", 401: "missing or wrong API key",
               404: "no such row in this clinic", 409: "acknowledged already",
               422: "invalid fields, each named with a reason"}
    return {str(s): _json("Error", reasons[s]) for s in statuses}


def _id_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}}


@cache
def openapi_document() -> dict:
    request_schema = VisitIn.model_json_schema(ref_template=REF)
    components = request_schema.pop("$defs", {})
    components.update(VisitIn=request_schema, AcknowledgeIn=AcknowledgeIn.model_json_schema(),
                      Escalation=_ESCALATION, Error=_ERROR, Client=_CLIENT, Message=_MESSAGE,
                      Visit=_VISIT, ClientWithVisits=_CLIENT_WITH_VISITS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Aftercare API", "version": "1.0.0",
                 "description": "Enrol visits from a clinic's booking system."},
        "components": {
            "schemas": components,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/api/v1/visits": {"post": {
                "summary": "Enrol a visit: plan and queue its aftercare messages",
                "description": "Idempotent on external_id: a retry returns the first result (200).",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/VisitIn"}}}},
                "responses": {"201": _json("Visit", "enrolled"),
                              "200": _json("Visit", "already enrolled (same external_id)"),
                              **_errors(400, 401, 422)},
            }},
            "/api/v1/visits/{visit_id}": {"get": {
                "summary": "A visit with its planned messages",
                "parameters": [_id_param("visit_id")],
                "responses": {"200": _json("Visit", "the visit"), **_errors(401, 404)},
            }},
            "/api/v1/clients/{client_id}": {"get": {
                "summary": "A client with their visits",
                "parameters": [_id_param("client_id")],
                "responses": {"200": _json("ClientWithVisits", "the client"), **_errors(401, 404)},
            }},
            "/api/v1/clients/{client_id}/checkins": {"get": {
                "summary": "The client's check-ins (SMS replies and the aftercare page)",
                "parameters": [_id_param("client_id")],
                "responses": {"200": _list_of("checkins", {"type": "object", "properties": {
                    "id": {"type": "integer"}, "visit_id": _NULLABLE_INT,
                    "answer": {"type": ["string", "null"]}, "pain": _NULLABLE_INT,
                    "source": {"type": "string"}, "at": _TIME}}, "check-ins, oldest first"),
                    **_errors(401, 404)},
            }},
            "/api/v1/clients/{client_id}/escalations": {"get": {
                "summary": "The client's escalations",
                "parameters": [_id_param("client_id")],
                "responses": {"200": _list_of("escalations",
                                              {"$ref": "#/components/schemas/Escalation"},
                                              "escalations, oldest first"), **_errors(401, 404)},
            }},
            "/api/v1/clients/{client_id}/audit": {"get": {
                "summary": "The client's audit log: messages in, interpretations, escalations",
                "parameters": [_id_param("client_id")],
                "responses": {"200": _list_of("events", {"type": "object", "properties": {
                    "at": _TIME, "actor": {"type": "string"}, "action": {"type": "string"},
                    "detail": {"type": "object"}}}, "events, oldest first"),
                    **_errors(401, 404)},
            }},
            "/api/v1/escalations/{escalation_id}/acknowledge": {"post": {
                "summary": "Acknowledge an escalation: stops the re-notifications",
                "parameters": [_id_param("escalation_id")],
                "requestBody": {"required": False, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/AcknowledgeIn"}}}},
                "responses": {"200": _json("Escalation", "acknowledged"),
                              **_errors(400, 401, 404, 409, 422)},
            }},
            "/api/v1/openapi.json": {"get": {
                "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }},
        },
    }
