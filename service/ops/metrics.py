"""Prometheus metrics, from three sources chosen so that every number is right however many
processes and hosts run the service:

- What the database knows (the outbox, the due backlog, open escalations, live workers) is read
  when /metrics is scraped, by service/ops/collector.py.
- Events in a web process that leave no row (a webhook refused for its signature is not stored)
  or that are best read as rates (inbound messages by intent) are counters in WEB. Under gunicorn
  each process writes them to files in PROMETHEUS_MULTIPROC_DIR, which deploy/gunicorn.conf.py
  creates and sets before the app is loaded, and a scrape adds them up.
- Events in a worker (send duration, lateness, outcomes, retries) are counted in WORKER, in that
  worker process: it may run on another host, so it serves them itself on WORKER_METRICS_PORT.
"""

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    start_http_server,
)

WEB = CollectorRegistry()
WEBHOOK_SIGNATURE_FAILURES = Counter(
    "aftercare_webhook_signature_failures", "Twilio webhooks refused: X-Twilio-Signature missing or wrong",
    ["webhook"], registry=WEB)
INBOUND_MESSAGES = Counter(
    "aftercare_inbound_messages", "Inbound SMS stored, by what the reply was taken to mean",
    ["intent"], registry=WEB)
INBOUND_UNROUTED = Counter(
    "aftercare_inbound_unrouted", "Inbound SMS and status callbacks to a sender no clinic owns "
    "(stored without a clinic, or ignored): a number's webhook points here by mistake",
    ["webhook"], registry=WEB)

WORKER = CollectorRegistry()
DISPATCHED = Counter(
    "aftercare_dispatched", "Outbox rows this worker handled, by the status each was left in "
    "(pending: a transient failure, to be retried)", ["kind", "channel", "status"], registry=WORKER)
SEND_RETRIES = Counter(
    "aftercare_send_retries", "Transient send failures put back for a later attempt, by error code",
    ["channel", "code"], registry=WORKER)
SEND_DURATION = Histogram(
    "aftercare_send_duration_seconds", "How long one request to the provider took",
    ["channel"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30), registry=WORKER)
SEND_LATENESS = Histogram(
    "aftercare_send_lateness_seconds", "How long after its due time a message was sent",
    ["channel"], buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600), registry=WORKER)

def observe_dispatch(messages: Iterable, outcomes: dict[int, dict]) -> None:
    """Counts one dispatched batch: `outcomes` as written to the outbox, by message id. Counters
    are added per label set, not per message (a label lookup costs more than the addition)."""
    dispatched, retries = Tally(), Tally()
    for message in messages:
        outcome = outcomes[message.id]
        status = outcome["status"]
        dispatched[message.kind, message.channel, status] += 1
        if status == "pending":
            retries[message.channel, outcome["error_code"] or "unknown"] += 1
        elif status == "sent":
            lateness = (outcome["sent_at"] - message.due_at).total_seconds()
            SEND_LATENESS.labels(message.channel).observe(max(lateness, 0.0))
    for labels, count in dispatched.items():
        DISPATCHED.labels(*labels).inc(count)
    for labels, count in retries.items():
        SEND_RETRIES.labels(*labels).inc(count)


def serve_worker_metrics(port: int):
    """The worker's own /metrics, on all interfaces (Prometheus may scrape from another host)."""
    server, _thread = start_http_server(port, registry=WORKER)
    return server
