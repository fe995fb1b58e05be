"""/metrics: what the database knows, read at scrape time; the web process's counters; the
worker's own counters and histograms, served on its port. Counters live for the whole test
process, so tests compare before and after."""

import urllib.request
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.ops import metrics
from tests.conftest import BOTH_BACKENDS, NO_PROVIDERS
from tests.helpers import NOW, PHONE, at, drain, enrol, signed_post, text


def parse(exposition: str) -> dict:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(exposition) for sample in family.samples}


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return parse(response.get_data(as_text=True))


def worker_sample(name: str, **labels) -> float:
    return metrics.WORKER.get_sample_value(name, labels) or 0.0


def outbox(samples: dict, kind: str, status: str, channel: str = "sms") -> float:
    key = ("aftercare_messages", frozenset({"kind": kind, "channel": channel, "status": status}.items()))
    return samples.get(key, 0.0)


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_dispatch_moves_the_outbox_gauges_and_the_worker_counters(client, clinic, providers,
                                                                    dispatcher):
    enrol(client, clinic[1])
    with at(NOW + timedelta(seconds=10)):
        before = scrape(client)
    sent_before = worker_sample("aftercare_dispatched_total", kind="window_start", channel="sms",
                                status="sent")
    sends_before = worker_sample("aftercare_send_duration_seconds_count", channel="sms")
    late_before = worker_sample("aftercare_send_lateness_seconds_count", channel="sms")
    late_sum_before = worker_sample("aftercare_send_lateness_seconds_sum", channel="sms")
    assert outbox(before, "window_start", "pending") == 1
    assert outbox(before, "window_start", "sent") == 0
    assert before[("aftercare_outbox_due_messages", frozenset())] == 1
    # Due when it was enrolled (NOW + 5 s): a message cannot go before its visit is known.
    assert before[("aftercare_outbox_oldest_due_seconds", frozenset())] == 5

    drain(dispatcher, NOW + timedelta(seconds=10))
    with at(NOW + timedelta(seconds=10)):
        after = scrape(client)
    assert outbox(after, "window_start", "pending") == 0
    assert outbox(after, "window_start", "sent") == 1
    assert outbox(after, "hydration", "pending") == 1  # not due yet
    assert after[("aftercare_outbox_due_messages", frozenset())] == 0
    assert after[("aftercare_database_up", frozenset())] == 1
    assert worker_sample("aftercare_dispatched_total", kind="window_start", channel="sms",
                         status="sent") == sent_before + 1
    assert worker_sample("aftercare_send_duration_seconds_count", channel="sms") == sends_before + 1
    assert worker_sample("aftercare_send_lateness_seconds_count", channel="sms") == late_before + 1
    # Due when enrolled, sent 5 s later.
    assert worker_sample("aftercare_send_lateness_seconds_sum", channel="sms") == late_sum_before + 5


def test_a_transient_failure_counts_as_a_retry(client, clinic, providers, dispatcher):
    twilio, _ = providers
    enrol(client, clinic[1])
    retries = worker_sample("aftercare_send_retries_total", channel="sms", code="http-503")
    twilio.fail_next(1, 503)
    drain(dispatcher, NOW + timedelta(seconds=10))
    assert worker_sample("aftercare_send_retries_total", channel="sms",
                         code="http-503") == retries + 1


def test_refused_webhooks_and_inbound_intents_are_counted(client, clinic, providers, dispatcher):
    enrol(client, clinic[1])
    drain(dispatcher, NOW + timedelta(seconds=10))
    refused = ("aftercare_webhook_signature_failures_total", frozenset({"webhook": "inbound_sms"}.items()))
    checkins = ("aftercare_inbound_messages_total", frozenset({"intent": "checkin"}.items()))
    before = scrape(client)

    form = {"MessageSid": "SM" + "f" * 32, "From": PHONE, "To": "+12025550199", "Body": "1"}
    assert signed_post(client, form, signature="forged").status_code == 403
    text(client, "3", NOW + timedelta(hours=25))  # "worse": a check-in and a concern
    with at(NOW + timedelta(hours=28)):
        after = scrape(client)

    assert after[refused] == before.get(refused, 0) + 1
    assert after[checkins] == before.get(checkins, 0) + 1
    concern_3h = ("aftercare_open_escalations", frozenset({"severity": "concern", "age": "2h-24h"}.items()))
    assert after[concern_3h] == 1
    assert after[("aftercare_open_escalation_oldest_seconds",
                  frozenset({"severity": "concern"}.items()))] == 3 * 3600
    assert after[("aftercare_open_escalation_oldest_seconds",
                  frozenset({"severity": "urgent"}.items()))] == 0


def test_the_token_guards_metrics_when_set(settings, client):
    settings["METRICS_TOKEN"] = "scrape-secret"
    from service import create_app

    guarded = create_app({**settings, "TESTING": True}).test_client()
    assert guarded.get("/metrics").status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200


def test_scrapes_still_answer_when_the_database_is_down():
    from service import create_app

    app = create_app({**NO_PROVIDERS, "DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1:1/x"})
    samples = scrape(app.test_client())
    assert samples[("aftercare_database_up", frozenset())] == 0
    assert not any(name == "aftercare_messages" for name, _ in samples)


def test_the_worker_serves_its_own_metrics(client, clinic, providers, dispatcher):
    enrol(client, clinic[1])
    drain(dispatcher, NOW + timedelta(seconds=10))
    server = metrics.serve_worker_metrics(0)  # any free port
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            samples = parse(response.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    key = ("aftercare_dispatched_total",
           frozenset({"kind": "window_start", "channel": "sms", "status": "sent"}.items()))
    assert samples[key] >= 1
    assert not any(name == "aftercare_messages" for name, _ in samples)  # the web app's
