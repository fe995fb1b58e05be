"""Retention: what `aftercare purge --older-than DAYS` deletes, and the worker daily when
RETENTION_DAYS is set; the audit trail has its own, AUDIT_RETENTION_DAYS (`purge_audit`).

Older than the cutoff go: outbox messages that are finished (sent, delivered, undelivered,
failed, cancelled or skipped, by their due time; never one still to be sent), inbound messages
(check-ins keep their answer and lose the link to the text), and what logins leave behind: staff
sessions last seen before it (ended, or dead by the idle timeout, at most 4 hours), failed login
attempts (counted for a day at most) and one-time links expired before it. Kept whatever
their age: clinics, staff, clients, visits, appointments, check-ins and escalations, the clinic's
record of care; one person's data goes with `erase-client`.

Rows go in chunks, each in its own short transaction, so that a first purge of a large outbox
holds no lock for long and any number of workers can run it at once.
"""

from datetime import datetime

from sqlalchemy import Column, Table, delete, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.care import audit
from service.domain.messages import FINISHED
from service.models import (
    AuditEvent,
    CheckIn,
    InboundMessage,
    LoginAttempt,
    Message,
    StaffSession,
    StaffToken,
)

CHUNK = 5000


def purge(engine: Engine, cutoff: datetime) -> dict[str, int]:
    """Deletes what is older than `cutoff`; returns how many rows of each table went."""
    message, inbound = Message.__table__, InboundMessage.__table__
    sessions, attempts, links = (StaffSession.__table__, LoginAttempt.__table__,
                                 StaffToken.__table__)
    return {
        "messages": _delete(engine, message, message.c.status.in_(FINISHED),
                            message.c.due_at < cutoff),
        "inbound_messages": _delete(engine, inbound, inbound.c.received_at < cutoff,
                                    detach=CheckIn.__table__.c.inbound_message_id),
        "staff_sessions": _delete(engine, sessions, sessions.c.last_seen_at < cutoff),
        "login_attempts": _delete(engine, attempts, attempts.c.at < cutoff),
        "staff_links": _delete(engine, links, links.c.expires_at < cutoff),
    }


def purge_audit(engine: Engine, cutoff: datetime) -> int:
    """Deletes each audit chain's rows older than `cutoff` from its start only (up to its first
    younger row), under the chain's lock, and records the last deleted row's hash in an
    `audit_purged` row, from which `audit.verify` starts. One transaction per chain."""
    with Session(engine) as session:
        chains = audit.chains(session)
    total = 0
    for clinic_id in chains:
        with Session(engine) as session:
            audit.lock_chain(session, clinic_id)
            first_kept = select(func.min(AuditEvent.id)).where(
                audit.in_chain(clinic_id), AuditEvent.created_at >= cutoff).scalar_subquery()
            last = session.execute(
                select(AuditEvent.id, AuditEvent.hash)
                .where(audit.in_chain(clinic_id), AuditEvent.created_at < cutoff,
                       or_(first_kept.is_(None), AuditEvent.id < first_kept))
                .order_by(AuditEvent.id.desc()).limit(1)).first()
            if last is None:
                continue
            gone = session.execute(delete(AuditEvent).where(
                audit.in_chain(clinic_id), AuditEvent.id <= last.id)).rowcount
            audit.record(session, "audit_purged", clinic_id=clinic_id, through_id=last.id,
                         through_hash=last.hash or "", rows=gone, before=cutoff.isoformat())
            session.commit()
        total += gone
    return total


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
