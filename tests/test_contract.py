"""The API's contract: one source (the pydantic models of service/web/schemas.py), a document that is
strict about responses, the published copy in docs/openapi.json equal to it, and every operation
answering as the document says, checked by schemathesis on real rows (an escalation included).

After changing the contract on purpose:  .venv/bin/python -m tests.test_contract > docs/openapi.json
"""

import json
from datetime import UTC, datetime

import schemathesis

from service.config import ROOT
from service.web.api.openapi import openapi_document
from tests.conftest import auth
from tests.contract_checks import CHECKS
from tests.helpers import text

PUBLISHED = ROOT / "docs" / "openapi.json"
# Response fields that may be left out: an error's per-field reasons.
OPTIONAL = {("ErrorOut", "fields")}


def test_the_served_document_is_the_published_one(client):
    served = client.get("/api/v1/openapi.json").get_json()
    assert served == openapi_document()
    assert served == json.loads(PUBLISHED.read_text()), (
        "the API's contract changed: if on purpose, `.venv/bin/python -m tests.test_contract > "
        "docs/openapi.json` and say so to the booking systems")


def test_every_response_field_is_required_and_no_other_is_allowed():
    schemas = openapi_document()["components"]["schemas"]
    responses = {name: schema for name, schema in schemas.items() if name.endswith("Out")}
    assert len(responses) >= 10
    for name, schema in responses.items():
        assert schema["additionalProperties"] is False, name
        assert set(schema["properties"]) - set(schema.get("required", [])) == \
            {field for model, field in OPTIONAL if model == name}, name


def test_times_are_date_times_and_the_14_day_rule_is_documented():
    schemas = openapi_document()["components"]["schemas"]
    assert schemas["EscalationOut"]["properties"]["opened_at"] == {
        "format": "date-time", "title": "Opened At", "type": "string"}
    occurred = schemas["VisitIn"]["properties"]["occurred_at"]
    assert "At most 14 days ago" in occurred["description"]
    assert schemas["ClientIn"]["properties"]["email"]["anyOf"][0]["format"] == "email"


def test_every_operation_answers_as_its_document_says(app, client, clinic, providers):
    """Each operation and each answer it documents, on rows made the way production makes them:
    enrolments through the API, a "worse" reply through Twilio's signed webhook (a check-in, a
    concern escalation, audit events), its acknowledgement."""
    headers = auth(clinic[1])
    phone = "+12025550123"
    visit = {"external_id": "booking-1", "occurred_at": datetime.now(UTC).isoformat(),
             "client": {"name": "Ana Ruiz", "phone": phone, "email": "ana@example.com",
                        "sms_consent": True}, "pain_before": 4,
             "next_appointment": {"starts_at": "2099-01-01T10:00:00+00:00"}}
    operations = {(op.method.upper(), op.path): op
                  for op in (result.ok() for result in schemathesis.openapi.from_wsgi(
                      "/api/v1/openapi.json", app).get_all_operations())}

    def call(method, path, expected, body=None, **path_parameters):
        case = operations[method, path].Case(path_parameters=path_parameters or None,
                                             **({} if body is None else {"body": body}))
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        assert response.status_code == expected, (method, path, response.text)
        return response.json()

    created = call("POST", "/api/v1/visits", 201, visit)
    assert call("POST", "/api/v1/visits", 200, visit) == created
    call("POST", "/api/v1/visits", 409, {**visit, "pain_before": 5})
    call("POST", "/api/v1/visits", 422, {**visit, "pain_before": 11})
    text(client, "3", sid="SM" + "3" * 32, sender=phone)  # worse: a check-in and a concern escalation

    client_id, visit_id = created["client_id"], created["id"]
    assert call("GET", "/api/v1/visits/{visit_id}", 200, visit_id=visit_id) == created
    call("GET", "/api/v1/visits/{visit_id}", 404, visit_id=visit_id + 1)
    assert call("GET", "/api/v1/clients/{client_id}", 200, client_id=client_id)["visits"]
    assert call("GET", "/api/v1/clients/{client_id}/checkins", 200, client_id=client_id)["checkins"]
    [escalation] = call("GET", "/api/v1/clients/{client_id}/escalations", 200,
                        client_id=client_id)["escalations"]
    acknowledge = "/api/v1/escalations/{escalation_id}/acknowledge"
    acknowledged = call("POST", acknowledge, 200, {"note": "called her"},
                        escalation_id=escalation["id"])
    assert acknowledged["status"] == "acknowledged" and acknowledged["note"] == "called her"
    call("POST", acknowledge, 409, escalation_id=escalation["id"])
    events = call("GET", "/api/v1/clients/{client_id}/audit", 200, client_id=client_id)["events"]
    assert {"visit_enrolled", "escalation_opened"} <= {e["action"] for e in events}


if __name__ == "__main__":
    print(json.dumps(openapi_document(), indent=2, ensure_ascii=False))
