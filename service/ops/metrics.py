"""Prometheus metrics, from three sources chosen so that every number is right however many
processes and hosts run the service:

- What the database knows (the outbox by kind/channel/status, the due backlog, open escalations by
  severity and age, live workers) is read when /metrics is scraped, by DatabaseCollector: any web
  process gives the same answer and nothing is shared between processes but the database.
- Events in a web process that leave no row (a webhook refused for its signature is not stored)
  or that are best read as rates (inbound messages by intent) are counters in WEB. Under gunicorn
  each process writes them to files in PROMETHEUS_MULTIPROC_DIR, which deploy/gunicorn.conf.py
  creates and sets before the app is loaded, and a scrape adds them up.
- Events in a worker (send duration, lateness, outcomes, retries) are counted in WORKER, in that
  worker process: it may run on another host, so it serves them itself on WORKER_METRICS_PORT.
"""

import logging
import os
import time
from collections import Counter as Tally
from collections.abc import Iterable
from datetime import datetime, timedelta

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, union_all
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from service.messaging import outbox
from service.messaging.channels import Channel, Outgoing
from service.models import Escalation, Message, utcnow
from service.ops import heartbeat

log = logging.getLogger(__name__)

WEB = CollectorRegistry()
WEBHOOK_SIGNATURE_FAILURES = Counter(
    "aftercare_webhook_signature_failures", "Twilio webhooks refused: X-Twilio-Signature missing or wrong",
    ["webhook"], registry=WEB)
INBOUND_MESSAGES = Counter(
    "aftercare_inbound_messages", "Inbound SMS stored, by what the reply was taken to mean",
    ["intent"], registry=WEB)

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

ESCALATION_AGES = (("0-30m", timedelta(minutes=30)), ("30m-2h", timedelta(hours=2)),
                   ("2h-24h", timedelta(hours=24)), ("24h+", timedelta.max))
SEVERITIES = ("concern", "urgent")


class DatabaseCollector:
    """Gauges read from the database at scrape time."""

    def __init__(self, engine: Engine, stale_after: timedelta):
        self.engine = engine
        self.stale_after = stale_after

    def collect(self):
        try:
            with self.engine.connect() as conn:
                families = list(_database_families(conn, utcnow(), self.stale_after))
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable: %s", exc)
            families = None
        yield GaugeMetricFamily("aftercare_database_up", "1 if the database answered this scrape",
                                value=0 if families is None else 1)
        yield from families or ()


def _database_families(conn: Connection, now: datetime, stale_after: timedelta):
    m = Message.__table__.c
    messages = GaugeMetricFamily("aftercare_messages", "Rows in the outbox, by kind, channel and status",
                                 labels=["kind", "channel", "status"])
    for kind, channel, status, count in conn.execute(
            select(m.kind, m.channel, m.status, func.count()).group_by(m.kind, m.channel, m.status)):
        messages.add_metric([kind, channel, status], count)
    yield messages

    backlog = conn.execute(due_backlog(now)).all()
    due = sum(count for count, _ in backlog)
    oldest = min((first for _, first in backlog if first is not None), default=None)
    yield GaugeMetricFamily("aftercare_outbox_due_messages", "Pending messages whose time has come",
                            value=due)
    yield GaugeMetricFamily("aftercare_outbox_oldest_due_seconds",
                            "How long the oldest due message has waited (0: none waits)",
                            value=(now - oldest).total_seconds() if oldest else 0)

    counts = {(s, age): 0 for s in SEVERITIES for age, _ in ESCALATION_AGES}
    oldest_by_severity = dict.fromkeys(SEVERITIES, 0.0)
    e = Escalation.__table__.c
    for severity, opened_at in conn.execute(select(e.severity, e.opened_at).where(e.status == "open")):
        age = now - opened_at
        bucket = next(name for name, limit in ESCALATION_AGES if age < limit)
        counts[severity, bucket] = counts.get((severity, bucket), 0) + 1
        oldest_by_severity[severity] = max(oldest_by_severity.get(severity, 0.0), age.total_seconds())
    open_escalations = GaugeMetricFamily("aftercare_open_escalations",
                                         "Unacknowledged escalations, by severity and age",
                                         labels=["severity", "age"])
    for (severity, age), count in counts.items():
        open_escalations.add_metric([severity, age], count)
    yield open_escalations
    oldest_escalation = GaugeMetricFamily("aftercare_open_escalation_oldest_seconds",
                                          "Age of the oldest unacknowledged escalation (0: none)",
                                          labels=["severity"])
    for severity, seconds in oldest_by_severity.items():
        oldest_escalation.add_metric([severity], seconds)
    yield oldest_escalation

    yield GaugeMetricFamily("aftercare_workers_alive", "Workers whose heartbeat is recent",
                            value=heartbeat.alive(conn, now, stale_after))


def due_backlog(now: datetime):
    """The count and oldest next attempt of the due rows, one row per priority: like the claim
    (service/messaging/outbox.py), each reads one range of ix_message_due (priority, next_attempt_at). A
    condition on next_attempt_at alone walks every pending row's entry, due or not."""
    m = Message.__table__.c
    return union_all(*(select(func.count(), func.min(m.next_attempt_at))
                       .where(*outbox.due_range(now, priority))
                       for priority in outbox.PRIORITIES))


def web_exposition(engine: Engine, stale_after: timedelta) -> bytes:
    registry = CollectorRegistry()
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # under gunicorn: every process's counters
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(WEB)
    registry.register(DatabaseCollector(engine, stale_after))
    return generate_latest(registry)


class TimedChannel:
    """A channel whose every send is measured."""

    def __init__(self, name: str, channel: Channel):
        self.name = name
        self.channel = channel
        self.sender = channel.sender
        self._duration = SEND_DURATION.labels(name)

    async def send(self, message: Outgoing) -> str:
        started = time.perf_counter()
        try:
            return await self.channel.send(message)
        finally:
            self._duration.observe(time.perf_counter() - started)

    async def close(self) -> None:
        await self.channel.close()


def timed(channels: dict[str, Channel]) -> dict[str, Channel]:
    return {name: TimedChannel(name, channel) for name, channel in channels.items()}


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
