"""The OpenAPI 3.1 document of /api/v1; request schemas come straight from the pydantic models."""

from functools import cache

from service.schemas import VisitIn

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
    "channels": {"type": "array", "items": {"type": "string"}},
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
    {"type": "object", "properties": {"visits": {"type": "array", "items": {
        "type": "object", "properties": _VISIT_FIELDS}}}},
]}


def _json(schema_name: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{schema_name}"}}}}


def _errors(*statuses: int) -> dict:
    reasons = {400: "the body is not a JSON object", 401: "missing or wrong API key",
               404: "no such row in this clinic", 422: "invalid fields, each named with a reason"}
    return {str(s): _json("Error", reasons[s]) for s in statuses}


def _id_param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


@cache
def openapi_document() -> dict:
    request_schema = VisitIn.model_json_schema(ref_template=REF)
    components = request_schema.pop("$defs", {})
    components.update(VisitIn=request_schema, Error=_ERROR, Client=_CLIENT, Message=_MESSAGE,
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
            "/api/v1/openapi.json": {"get": {
                "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }},
        },
    }
