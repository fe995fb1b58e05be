"""Retention: what `aftercare purge --older-than DAYS` deletes, and the worker daily when
RETENTION_DAYS is set.

Older than the cutoff go: outbox messages that are finished (sent, delivered, undelivered,
failed, cancelled or skipped, by their due time; never one still to be sent), inbound messages
(check-ins keep their answer and lose the link to the text), and audit events. Kept whatever
their age: clinics, staff, clients, visits, appointments, check-ins and escalations, the clinic's
record of care; one person's data goes with `erase-client`.

Rows go in chunks, each in its own short transaction, so that a first purge of a large outbox
holds no lock for long and any number of workers can run it at once.
"""

from datetime import datetime

from sqlalchemy import Column, Table, delete, select, update
from sqlalchemy.engine import Engine

from service.domain.messages import FINISHED
from service.models import AuditEvent, CheckIn, InboundMessage, Message

CHUNK = 5000


def purge(engine: Engine, cutoff: datetime) -> dict[str, int]:
    """Deletes what is older than `cutoff`; returns how many rows of each table went."""
    message, inbound, event = Message.__table__, InboundMessage.__table__, AuditEvent.__table__
    return {
        "messages": _delete(engine, message, message.c.status.in_(FINISHED),
                            message.c.due_at < cutoff),
        "inbound_messages": _delete(engine, inbound, inbound.c.received_at < cutoff,
                                    detach=CheckIn.__table__.c.inbound_message_id),
        "audit_events": _delete(engine, event, event.c.created_at < cutoff),
    }


def _delete(engine: Engine, table: Table, *where, detach: Column | None = None) -> int:
    """Deletes the matching rows chunk by chunk; `detach` is a column referring to them, set to
    NULL first."""
    total = 0
    while True:
        with engine.begin() as conn:
            ids = conn.execute(select(table.c.id).where(*where).limit(CHUNK)).scalars().all()
            if not ids:
                return total
            if detach is not None:
                conn.execute(update(detach.table).where(detach.in_(ids)).values({detach.name: None}))
            conn.execute(delete(table).where(table.c.id.in_(ids)))
        total += len(ids)
