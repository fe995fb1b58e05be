"""schemathesis against the served OpenAPI document: valid and invalid requests generated from the
schema, a bounded number per operation. No 5xx; every answer conforms to the document, which is
generated from the models and strict about responses (every field required, no other allowed:
a renamed field fails); every 4xx is JSON with an "error", and a 422 names each invalid field (a
field of the request body, dotted for nested ones)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from twilio.request_validator import RequestValidator

from service.web.schemas import AcknowledgeIn, VisitIn
from tests.conftest import AUTH_TOKEN, FROM_NUMBER, PUBLIC_URL, auth

EXAMPLES = 50  # per operation and mode: about 800 requests, a few seconds
FIELDS = {name for model in (VisitIn, AcknowledgeIn) for name in model.model_fields}


def operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


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


def text_reply(client, phone: str, body: str, sid: str) -> None:
    """A reply as Twilio posts it, signed."""
    form = {"MessageSid": sid, "From": phone, "To": FROM_NUMBER, "Body": body}
    url = f"{PUBLIC_URL}/webhooks/twilio/sms"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    response = client.post("/webhooks/twilio/sms", data=form,
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


CHECKS = [not_a_server_error, errors_are_json_and_name_the_field, status_code_conformance,
          content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
def test_the_api_never_fails_and_explains_every_refusal(app, clinic, providers, mode):
    # schemathesis' own pytest plugin (from_fixture) does not run under pytest 9: hypothesis
    # drives each operation's strategy directly.
    headers = auth(clinic[1])
    http = app.test_client()
    for n in range(3):  # rows with small ids, so that reads find something too
        body = {"client": {"name": f"Ana {n}", "phone": f"+1202555014{n}", "sms_consent": True}}
        assert http.post("/api/v1/visits", json=body, headers=headers).status_code == 201
        # "worse": a check-in and an escalation each, so that their answers are checked too
        text_reply(http, f"+1202555014{n}", "3", f"SM{n:032d}")
    for operation in operations(app):
        # Random ids (mostly 404), then the ids of the rows just made.
        names = [p.name for p in operation.path_parameters]
        for path_parameters in [None, {name: 2 for name in names}] if names else [None]:
            @given(case=operation.as_strategy(generation_mode=mode,
                                              path_parameters=path_parameters))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def exercise(case):
                case.call_and_validate(headers=headers, checks=CHECKS)

            exercise()
