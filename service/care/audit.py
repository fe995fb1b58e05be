"""The audit trail: every inbound message, interpretation, escalation step, acknowledgement and
opt-out/opt-in lands here, readable per client, and who saw or changed what (viewing, searching,
exporting, erasing, logging in or failing to, logging out, settings, API keys), from where.

Append-only, and tamper-evident: each row's `hash` is sha256 over the previous row's hash and the
row's own content (`_digest`). One chain per clinic, rows without a clinic a chain of their own;
rows from before the chain (hash NULL) come first and are not checked. `verify` walks a chain and
names the first row that does not fit: an edited, inserted or deleted row. Whoever can write the
database could recompute a whole tail, so `verify` prints the last hash: note it elsewhere.

Rows are appended when the session commits, not when recorded: the chain's lock (PostgreSQL's
`pg_advisory_xact_lock`, per clinic; SQLite lets one writer in at a time) is then the last lock
the transaction takes, so it cannot deadlock with the row locks taken before it, and rows get
their ids under it, so a chain's id order is its order.

Two rewrites are allowed, each said by a later row of the same chain: erasure (`redact`) turns a
client's rows' detail into {"erased": true} and records a `client_erased` row listing their ids,
and `verify` takes such a row's stored hash as it is; retention (`purge` in retention.py) deletes
a chain's oldest rows and records an `audit_purged` row holding the last deleted row's hash, from
which `verify` starts.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import event, func, text, update
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from service.models import AuditEvent, utcnow

ERASED = {"erased": True}
_PENDING = "audit_pending"
_LOCK = 0x41554454_00000000  # "AUDT" in the high half, the clinic id in the low


def _nowhere() -> str | None:
    return None


# Where the current actor is: the web package sets this to the request's address (care imports no
# Flask); elsewhere (the worker, the CLI) there is no address.
remote_addr_of: Callable[[], str | None] = _nowhere


def record(session: Session, action: str, *, clinic_id: int | None, client_id: int | None = None,
           actor: str = "system", **detail) -> None:
    """Appended when the session commits (see above); rolled back with it."""
    if not session.in_transaction():
        session.begin()  # so that a rollback or close before any query forgets this row too
    session.info.setdefault(_PENDING, []).append(AuditEvent(
        clinic_id=clinic_id, client_id=client_id, actor=actor, action=action, detail=detail,
        created_at=utcnow(), remote_addr=remote_addr_of()))


def redact(session: Session, client_id: int, clinic_id: int, actor: str) -> None:
    """Drops the personal data of the client's rows: their detail, recorded as redacted."""
    ids = session.exec(select(AuditEvent.id).where(AuditEvent.client_id == client_id,
                                                   AuditEvent.clinic_id == clinic_id)).all()
    session.execute(update(AuditEvent).where(AuditEvent.id.in_(ids)).values(detail=ERASED))
    record(session, "client_erased", clinic_id=clinic_id, client_id=client_id, actor=actor,
           redacted=sorted(ids))


def in_chain(clinic_id: int | None):
    return AuditEvent.clinic_id.is_(None) if clinic_id is None else AuditEvent.clinic_id == clinic_id


def lock_chain(session: Session, clinic_id: int | None) -> None:
    """Serializes writers of one chain until the transaction ends (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": _LOCK + (clinic_id or 0)})


def _digest(previous: str, row: AuditEvent) -> str:
    content = [previous, row.clinic_id, row.client_id, row.actor, row.action, row.detail,
               row.created_at.isoformat(), row.remote_addr]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@event.listens_for(OrmSession, "before_commit")
def _append(session: OrmSession) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()  # the caller's own writes, and their row locks, before the chain's lock
    chains = defaultdict(list)
    for row in pending:
        chains[row.clinic_id].append(row)
    for clinic_id in sorted(chains, key=lambda c: c or 0):  # one order: no deadlock between two
        lock_chain(session, clinic_id)
        rows = chains[clinic_id]
        session.add_all(rows)
        session.flush()  # ids under the lock; on SQLite the insert takes the writer's lock
        previous = session.exec(select(AuditEvent.hash).where(
            in_chain(clinic_id), AuditEvent.id < rows[0].id)
            .order_by(AuditEvent.id.desc()).limit(1)).first() or ""
        for row in rows:
            row.hash = previous = _digest(previous, row)
        session.flush()


@event.listens_for(OrmSession, "after_transaction_end")
def _forget(session: OrmSession, transaction) -> None:
    """What a rolled-back or closed transaction recorded is not appended by the next one."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def verify(session: Session, clinic_id: int | None) -> tuple[int, str | None, str]:
    """Walks one chain: (rows checked, the first broken link or None, the last hash)."""
    marks = session.exec(select(AuditEvent).where(
        in_chain(clinic_id), AuditEvent.action.in_(("client_erased", "audit_purged")))).all()
    redacted = {i for m in marks if m.action == "client_erased"
                for i in m.detail.get("redacted", [])}
    purges = [m for m in marks if m.action == "audit_purged"]
    previous = max(purges, key=lambda m: m.id).detail["through_hash"] if purges else ""
    checked, started = 0, False
    rows = session.exec(select(AuditEvent).where(in_chain(clinic_id))
                        .order_by(AuditEvent.id).execution_options(yield_per=1000))
    for row in rows:
        if row.hash is None and not started:
            continue  # from before the chain
        started = True
        if row.hash is None:
            return checked, f"row {row.id}: no hash (inserted outside the application)", previous
        if row.id in redacted and row.detail == ERASED:
            pass  # its detail was erased; the link to the next row still holds
        elif row.hash != _digest(previous, row):
            return checked, (f"row {row.id} ({row.action}): its content or the row before it "
                             "differs from what was recorded"), previous
        previous = row.hash
        checked += 1
    return checked, None, previous


def chains(session: Session) -> list[int | None]:
    """Every chain there is: its clinic id, None for rows without one."""
    return list(session.exec(select(AuditEvent.clinic_id).group_by(AuditEvent.clinic_id)
                             .order_by(func.coalesce(AuditEvent.clinic_id, 0))))
