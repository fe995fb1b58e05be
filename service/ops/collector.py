"""The /metrics gauges read from the database at scrape time (the outbox by kind, channel and
status, the due backlog, open escalations by severity and age, live workers): any web process gives
the same answer, nothing is shared between processes but the database. The counters they are served
with are in service/ops/metrics.py.
"""

import logging
import os
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, union_all
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from service.domain.escalation import SEVERITIES
from service.messaging import outbox
from service.models import Escalation, Message, utcnow
from service.ops import heartbeat
from service.ops.metrics import WEB

log = logging.getLogger(__name__)

ESCALATION_AGES = (("0-30m", timedelta(minutes=30)), ("30m-2h", timedelta(hours=2)),
                   ("2h-24h", timedelta(hours=24)), ("24h+", timedelta.max))


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
