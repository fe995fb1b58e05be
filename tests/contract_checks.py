"""What schemathesis checks of every answer of the API (tests/test_schemathesis.py with generated
requests, tests/test_contract.py on real rows): no 5xx, conformance to the document, and every
4xx JSON with an "error", a 422 naming each invalid field."""

from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.care.schemas import VisitIn
from service.web.schemas import AcknowledgeIn

FIELDS = {name for model in (VisitIn, AcknowledgeIn) for name in model.model_fields}


def errors_are_json_and_name_the_field(ctx, response, case) -> None:
    if not 400 <= response.status_code < 500:
        return
    content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", [""])
    assert content_type[0].startswith("application/json"), \
        f"{response.status_code} is not JSON: {response.headers}"
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    if response.status_code == 422:
        fields = body.get("fields")
        assert isinstance(fields, dict) and fields, body
        for name, reason in fields.items():
            # A field the body should not have is named as sent, with the reason "unknown field".
            assert name.split(".")[0] in FIELDS | {"body"} or reason == "unknown field", (name, body)
            assert isinstance(reason, str) and reason, body


CHECKS = [not_a_server_error, errors_are_json_and_name_the_field, status_code_conformance,
          content_type_conformance, response_schema_conformance]
