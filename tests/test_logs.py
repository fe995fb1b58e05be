"""Logs: JSON lines with the request id, and never a phone number in full or a message body,
whoever logged it."""

import io
import json
import logging
from datetime import timedelta

import pytest

from service.ops import logs
from tests.helpers import NOW, ON_CALL_PHONE, PHONE, drain, enrol, text


@pytest.fixture
def log_lines():
    """The production logging setup, writing to a buffer; the test's own setup comes back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    logs.configure("INFO", stream=buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("raw, masked", [
    ("+12025550123", "+********123"),
    ("+1 202-555-0123", "+********123"),
    ("12025550123", "********123"),
    ("(202) 555-0123", "*******123"),
    ("+447911123456", "+*********456"),
])
def test_phone_numbers_are_masked_but_for_the_last_3_digits(raw, masked):
    assert logs.mask_phones(f"to {raw}, message 42") == f"to {masked}, message 42"


@pytest.mark.parametrize("harmless", [
    "2026-06-10T14:00:00+00:00", "message 1234567", "SM0123456789abcdef0123456789abcdef",
    "took 12.5 ms", "visit 3 of 10",
])
def test_dates_ids_and_sids_are_left_alone(harmless):
    assert logs.mask_phones(harmless) == harmless


def test_the_filter_masks_arguments_extras_and_tracebacks(log_lines):
    log = logging.getLogger("anything")
    log.info("texting %s", PHONE, extra={"to": PHONE})
    try:
        raise ValueError(f"The 'To' number {PHONE} is not valid")
    except ValueError:
        log.exception("send failed")
    first, second = log_lines()
    assert first["message"] == "texting +********123" and first["to"] == "+********123"
    assert first["level"] == "INFO" and first["logger"] == "anything"
    assert "5550123" not in json.dumps(second) and "+********123 is not valid" in second["exception"]


def test_end_to_end_logs_hold_no_number_and_no_body(client, clinic, providers, dispatcher,
                                                    log_lines):
    twilio, _ = providers
    enrol(client, clinic[1], channels=["sms"])
    drain(dispatcher, NOW + timedelta(seconds=10))
    reply = "worse today, my zebra-striped heating pad did not help"
    text(client, reply, NOW + timedelta(hours=25))  # a concern: advice to the client, alerts
    drain(dispatcher, NOW + timedelta(hours=25, seconds=5))

    lines = log_lines()
    everything = "\n".join(json.dumps(line) for line in lines)
    sent = [message.body for message in twilio.messages]
    assert len(sent) >= 3 and {m.to for m in twilio.messages} >= {PHONE, ON_CALL_PHONE}
    for number in (PHONE, ON_CALL_PHONE):
        assert number[-7:] not in everything
    assert "zebra" not in everything
    for body in sent:
        assert body[:40] not in everything
    # What was logged: each request with its id, the reply's masked sender, each batch.
    requests = [line for line in lines if line.get("path")]
    assert {line["path"] for line in requests} == {"/api/v1/visits", "/webhooks/twilio/sms"}
    assert all(len(line["request_id"]) == 32 for line in requests)
    assert any(line["message"] == "inbound SMS from +********123" for line in lines)
    assert any(line["message"].startswith("dispatched ") for line in lines)


def test_the_request_id_is_taken_from_the_proxy_or_made(client, log_lines):
    given = client.get("/api/v1/openapi.json", headers={"X-Request-ID": "edge-7f3a.1"})
    assert given.headers["X-Request-ID"] == "edge-7f3a.1"
    forged = client.get("/api/v1/openapi.json", headers={"X-Request-ID": "x\" injected"})
    assert forged.headers["X-Request-ID"] != "x\" injected" and len(forged.headers["X-Request-ID"]) == 32
    assert [line["request_id"] for line in log_lines()] == ["edge-7f3a.1", forged.headers["X-Request-ID"]]


def test_probes_are_not_logged_unless_they_fail(client, log_lines):
    client.get("/healthz")
    client.get("/readyz")  # no worker: 503
    assert [line["path"] for line in log_lines()] == ["/readyz"]
