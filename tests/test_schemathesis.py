"""schemathesis against the served OpenAPI document: valid and invalid requests generated from the
schema, a bounded number per operation. No 5xx; every answer conforms to the document, which is
generated from the models and strict about responses (every field required, no other allowed:
a renamed field fails); every 4xx is JSON with an "error", and a 422 names each invalid field (a
field of the request body, dotted for nested ones)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.conftest import auth
from tests.contract_checks import CHECKS
from tests.helpers import text

EXAMPLES = 50  # per operation and mode: about 800 requests, a few seconds


def operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=["valid", "invalid"])
def test_the_api_never_fails_and_explains_every_refusal(app, clinic, providers, mode):
    # schemathesis' own pytest plugin (from_fixture) does not run under pytest 9: hypothesis
    # drives each operation's strategy directly.
    headers = auth(clinic[1])
    app.config["API_RATE_PER_MINUTE"] = 10**9  # its limit has its own tests (test_abuse_limits)
    http = app.test_client()
    for n in range(3):  # rows with small ids, so that reads find something too
        body = {"client": {"name": f"Ana {n}", "phone": f"+1202555014{n}", "sms_consent": True}}
        assert http.post("/api/v1/visits", json=body, headers=headers).status_code == 201
        # "worse": a check-in and an escalation each, so that their answers are checked too
        text(http, "3", sid=f"SM{n:032d}", sender=f"+1202555014{n}")
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
