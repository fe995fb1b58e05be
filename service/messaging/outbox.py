"""The outbox's state changes, each a single SQL statement.

Claiming is an UPDATE ... RETURNING per priority over the partial indexes of pending rows; on
PostgreSQL its sub-selects lock with FOR UPDATE SKIP LOCKED, so any number of workers share the
due rows without ever claiming the same one. SQLite serialises writers, which makes the same
UPDATE safe there.
"""

import json
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, event, exists, or_, select, text, union_all, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from service.db import dialect_insert
from service.domain.messages import FINAL, REOPENABLE, CancelReason, MessageKind, MessageStatus
from service.models import Clinic, Message, UTCDateTime

log = logging.getLogger(__name__)
table = Message.__table__
# Literal SQL, because executemany() cannot expand a bound list.
_NOT_FINAL = "message.status NOT IN (" + ", ".join(f"'{status}'" for status in FINAL) + ")"


# Every priority a message has (models.Message.priority): 0 for answers to a client and alerts
# to staff, 1 for the rest. The claim reads them in this order.
PRIORITIES = (0, 1)
URGENT, ROUTINE = PRIORITIES


def due_range(now: datetime, priority: int):
    """The due rows of one priority: one range of the partial index ix_message_due (priority,
    next_attempt_at), which ends at `now` however many rows are pending later."""
    return (table.c.status == MessageStatus.PENDING, table.c.priority == priority,
            table.c.next_attempt_at <= now)


def due(now: datetime, limit: int, priority: int = 1, lock: bool = True):
    """The ids of due rows of one priority, oldest first."""
    query = (
        select(table.c.id)
        .where(*due_range(now, priority))
        .order_by(table.c.next_attempt_at)
        .limit(limit)
    )
    return query.with_for_update(skip_locked=True) if lock else query


def any_due(conn: Connection, now: datetime, priorities: tuple[int, ...] = PRIORITIES) -> bool:
    """Whether a claim would find anything: the first entry of each priority's due range."""
    return any(conn.execute(due(now, 1, priority, lock=False)).first()
               for priority in priorities)


def claim_due(conn: Connection, worker: str, now: datetime, limit: int,
              priorities: tuple[int, ...] = PRIORITIES) -> list[int]:
    """Claims up to `limit` due rows of these priorities, urgent first: urgent rows oldest first,
    routine rows a fair share per clinic first (see _claim_routine). One statement per priority:
    a single one ordered by (priority, next_attempt_at) finds the first due row fast, but to
    learn that none is due it walks every pending row's index entry (11 ms at 1,000,000
    pending, each tick)."""
    ids: list[int] = []
    for priority in priorities:
        if len(ids) >= limit:
            break
        if priority == ROUTINE:
            ids += _claim_routine(conn, worker, now, limit - len(ids))
        else:
            ids += _claim(conn, worker, now, due(now, limit - len(ids), priority))
    return ids


def _claim(conn: Connection, worker: str, now: datetime, ids) -> list[int]:
    claimed = conn.execute(
        update(table)
        .where(table.c.id.in_(ids))
        .values(status=MessageStatus.CLAIMED, claimed_by=worker, claimed_at=now)
        .returning(table.c.id)
    )
    return [row.id for row in claimed]


def clinics_due(now: datetime):
    """The clinics with routine rows due: one look into ix_message_due_clinic per clinic,
    however many rows each has pending."""
    clinic = Clinic.__table__
    return select(clinic.c.id).where(exists().where(table.c.clinic_id == clinic.c.id,
                                                    *due_range(now, ROUTINE)))


def clinic_due(now: datetime, clinic_id: int, limit: int):
    """One clinic's due routine rows, oldest first: one range of ix_message_due_clinic."""
    return due(now, limit, ROUTINE).where(table.c.clinic_id == clinic_id)


def _claim_routine(conn: Connection, worker: str, now: datetime, limit: int) -> list[int]:
    """When several clinics have routine rows due (they may share one sender), each gets an
    equal share of the claim, its oldest first: one clinic's wave of 20,000 does not hold
    another's 100 texts behind it. What the shares leave goes oldest first, as does the whole
    claim when one clinic has rows due."""
    clinics = list(conn.execute(clinics_due(now)).scalars())
    if not clinics:
        return []
    ids: list[int] = []
    if len(clinics) > 1:
        if len(clinics) > limit:  # more clinics than rows to claim: a random few, one each
            clinics = random.sample(clinics, limit)
        share = limit // len(clinics)
        shares = (clinic_due(now, clinic_id, share).subquery() for clinic_id in clinics)
        ids = _claim(conn, worker, now, union_all(*(select(part.c.id) for part in shares)))
    if len(ids) < limit:
        ids += _claim(conn, worker, now, due(now, limit - len(ids), ROUTINE))
    return ids


# --- waking the dispatcher when an urgent row is written ---

# PostgreSQL: migration 0006's trigger notifies this channel when an urgent row is inserted.
URGENT_CHANNEL = "aftercare_urgent"
_urgent_callbacks: list[Callable[[], None]] = []


def on_urgent(callback: Callable[[], None]) -> Callable[[], None]:
    """Calls `callback` whenever this process commits an urgent row through an ORM session (a
    worker's own writes, e.g. re-sent escalation alerts; SQLite has no NOTIFY). Returns what
    removes it again."""
    _urgent_callbacks.append(callback)
    return lambda: _urgent_callbacks.remove(callback)


@event.listens_for(Session, "after_flush")
def _note_urgent(session: Session, _context) -> None:
    if _urgent_callbacks and any(isinstance(row, Message) and row.priority == URGENT
                                 for row in session.new):
        session.info["aftercare_urgent"] = True


@event.listens_for(Session, "after_commit")
def _signal_urgent(session: Session) -> None:
    if session.info.pop("aftercare_urgent", False):
        for callback in list(_urgent_callbacks):
            try:
                callback()
            except Exception:  # the commit stands: the poll finds the row
                log.exception("waking the dispatcher failed")


@event.listens_for(Session, "after_rollback")
def _forget_urgent(session: Session) -> None:
    session.info.pop("aftercare_urgent", None)


def reap(conn: Connection, now: datetime, timeout: timedelta) -> int:
    """Claims older than the timeout belong to a worker that died: give them back."""
    result = conn.execute(
        update(table)
        .where(table.c.status == MessageStatus.CLAIMED, table.c.claimed_at < now - timeout)
        .values(status=MessageStatus.PENDING, claimed_by=None, claimed_at=None)
    )
    return result.rowcount


# Outcome of one claimed row; every key must be given, so one executemany writes a whole batch.
# claimed_by stays: it tells which worker sent the message.
OUTCOME_KEYS = ("status", "attempts", "next_attempt_at", "provider_id", "error_code",
                "error_message", "body", "sent_at")

_record = (
    update(table)
    # A delivery callback can overtake our own bookkeeping: never step a final status back.
    .where(table.c.id == bindparam("b_id"), text(_NOT_FINAL))
    .values(**{key: bindparam(f"b_{key}") for key in OUTCOME_KEYS})
)


# PostgreSQL: the whole batch in one statement, bound as one JSON document (encoding it runs in
# C; binding a list per column made psycopg dump every element in Python).
_PG_TYPES = {"id": "integer", "status": "varchar", "attempts": "integer",
             "next_attempt_at": "timestamp", "provider_id": "varchar", "error_code": "varchar",
             "error_message": "varchar", "body": "text", "sent_at": "timestamp"}
_record_pg = text(
    "UPDATE message SET "
    + ", ".join(f"{key} = v.{key}" for key in OUTCOME_KEYS)
    + " FROM json_to_recordset(CAST(:batch AS json)) AS v("
    + ", ".join(f"{key} {kind}" for key, kind in _PG_TYPES.items()) + ")"
    " WHERE message.id = v.id AND " + _NOT_FINAL
)


_STORED_TIME = UTCDateTime()


def _as_stored(value: datetime) -> str:
    """A timestamp as the outbox column stores it (naive UTC), for JSON."""
    if isinstance(value, datetime):
        return _STORED_TIME.process_bind_param(value, None).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def record(conn: Connection, outcomes: dict[int, dict]) -> None:
    if not outcomes:
        return
    if conn.dialect.name == "postgresql":
        batch = [{"id": message_id, **outcome} for message_id, outcome in outcomes.items()]
        conn.execute(_record_pg, {"batch": json.dumps(batch, default=_as_stored)})
        return
    conn.execute(_record, [
        {"b_id": message_id, **{f"b_{k}": outcome[k] for k in OUTCOME_KEYS}}
        for message_id, outcome in outcomes.items()
    ])


def backoff(attempts: int, retry_after: float | None = None, base: float = 30.0,
            cap: float = 3600.0, rng: random.Random = random) -> timedelta:
    """Exponential backoff with jitter (30 s, 1 min, 2 min, ... up to an hour), never sooner
    than the provider's Retry-After."""
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    seconds = rng.uniform(ceiling / 2, ceiling)
    return timedelta(seconds=max(seconds, retry_after or 0.0))


def record_delivery(conn: Connection, message_id: int, provider_id: str, status: str,
                    error_code: str | None, now: datetime) -> bool:
    """Apply a delivery-status callback. Callbacks arrive out of order: only a final status is
    recorded, and never over another final one. Returns whether the row changed."""
    if status not in FINAL:
        return False
    changes = {"status": status, "status_updated_at": now, "error_code": error_code}
    if status == MessageStatus.DELIVERED:
        changes["delivered_at"] = now
    result = conn.execute(
        update(table)
        .where(table.c.id == message_id, table.c.channel == "sms", table.c.status.not_in(FINAL),
               (table.c.provider_id == provider_id) | table.c.provider_id.is_(None))
        .values(provider_id=provider_id, **changes)
    )
    return result.rowcount == 1


# --- a plan message changing channel (enrolment.replan_channels, the dispatcher's fallback) ---

CANCEL = (update(table)
          .where(table.c.id.in_(bindparam("ids", expanding=True)),
                 table.c.status == MessageStatus.PENDING)
          .values(status=MessageStatus.CANCELLED, error_code=bindparam("reason")))


def cancel(conn: Connection, ids: list[int], reason: CancelReason) -> None:
    """Pending rows cancelled; a row already claimed is decided by its send-time checks."""
    if ids:
        conn.execute(CANCEL, {"ids": ids, "reason": reason})


# --- cancelling what waits for someone who should no longer get it ---
# Each takes the caller's Session (whose Message objects are then updated too) or a Connection.
# Only pending rows change: a claimed one is decided by its send-time checks.

def _cancel_pending(db: Session | Connection, reason: CancelReason, *where) -> None:
    db.execute(update(Message).where(Message.status == MessageStatus.PENDING, *where)
               .values(status=MessageStatus.CANCELLED, error_code=reason))


def cancel_alerts(db: Session | Connection, escalation_id: int) -> None:
    """Staff acknowledged the escalation: its alerts still waiting (for the end of quiet hours)
    are moot."""
    _cancel_pending(db, CancelReason.ACKNOWLEDGED, Message.escalation_id == escalation_id)


def cancel_erased(db: Session | Connection, client_id: int) -> None:
    """The client's data is being erased: nothing more goes to them."""
    _cancel_pending(db, CancelReason.ERASED, Message.client_id == client_id)


def cancel_opted_out(db: Session | Connection, client_id: int, channels: list[str]) -> None:
    """The client stopped these channels on their page (alerts about them to staff still go)."""
    _cancel_pending(db, CancelReason.OPTED_OUT, Message.client_id == client_id,
                    Message.channel.in_(channels), Message.kind != MessageKind.STAFF_ALERT)


def cancel_texts_to(db: Session | Connection, phone: str, clinic_ids: list[int]) -> None:
    """The number texted STOP to the sender of these clinics: every text of theirs waiting for
    it, except the one confirming the STOP (another clinic's sender still texts it)."""
    _cancel_pending(db, CancelReason.OPTED_OUT, Message.recipient == phone,
                    Message.clinic_id.in_(clinic_ids), Message.channel == "sms",
                    Message.kind != MessageKind.OPT_OUT_CONFIRMATION)


def reopen_texts_to(db: Session | Connection, phone: str, clinic_ids: list[int],
                    now: datetime) -> None:
    """The number texted START to the sender of these clinics: their texts cancelled by its
    STOP that are still ahead go again; what fell due meanwhile stays cancelled (it is stale)."""
    db.execute(update(Message).where(
        Message.recipient == phone, Message.clinic_id.in_(clinic_ids), Message.channel == "sms",
        Message.status == MessageStatus.CANCELLED, Message.error_code == CancelReason.OPTED_OUT,
        Message.next_attempt_at > now,
    ).values(status=MessageStatus.PENDING, error_code=None))


def readdress(db: Session | Connection, client_id: int, channel: str, old: str,
              new: str | None) -> None:
    """Staff changed the client's number or address: what is still to go to the old one (pending,
    or cancelled only for its channel, so able to go again) goes to the new one. With no new one,
    the pending rows are cancelled as channel_changed (a plan message comes back when the client
    has a way again: enrolment.replan_channels)."""
    mine = (Message.client_id == client_id, Message.channel == channel, Message.recipient == old)
    if new is None:
        _cancel_pending(db, CancelReason.CHANNEL_CHANGED, *mine)
        return
    db.execute(update(Message).where(*mine, or_(
        Message.status == MessageStatus.PENDING,
        (Message.status == MessageStatus.CANCELLED) & Message.error_code.in_(REOPENABLE),
    )).values(recipient=new))


def add_once(conn: Connection, rows: list[dict]) -> None:
    """New rows by dedupe key: a key already there, whatever its status, is left as it is."""
    if rows:
        conn.execute(dialect_insert(conn)(table).on_conflict_do_nothing(
            index_elements=[table.c.dedupe_key]), rows)


def add_or_reopen(conn: Connection, rows: list[dict]) -> None:
    """Rows on a channel now used, by dedupe key: a new key is inserted; a row with the key that
    was cancelled only for its channel (REOPENABLE) goes back to pending, at the given time and
    address; any other row with the key (sent, pending, superseded...) stays as it is: a message
    never goes twice on one channel."""
    if not rows:
        return
    insert = dialect_insert(conn)(table)
    conn.execute(insert.on_conflict_do_update(
        index_elements=[table.c.dedupe_key],
        # (IN cannot be bound in an executemany)
        where=(table.c.status == MessageStatus.CANCELLED)
        & or_(*(table.c.error_code == r for r in REOPENABLE)),
        set_={"status": MessageStatus.PENDING, "error_code": None, "recipient": insert.excluded.recipient,
              "next_attempt_at": insert.excluded.next_attempt_at}), rows)


def add_staff_reply(session: Session, *, clinic_id: int, client_id: int, staff_id: int, text: str,
                    channel: str, recipient: str, now: datetime,
                    reply_id: str) -> tuple[Message, bool]:
    """A staff member's own text to a client, due at once on the urgent lane: a person answering
    now, like our answers to a client's text, so neither a reminder wave nor quiet hours hold it;
    the send-time rules (opt-out) still decide. `reply_id` (the form's) makes a double tap one
    message: (the message, whether it is new)."""
    key = f"staff_reply:{client_id}:{reply_id}"
    if (queued := session.execute(select(Message).where(Message.dedupe_key == key)).scalar()):
        return queued, False
    message = Message(clinic_id=clinic_id, client_id=client_id, staff_id=staff_id,
                      kind=MessageKind.STAFF_REPLY, channel=channel, recipient=recipient,
                      params={"text": text}, due_at=now, next_attempt_at=now, priority=URGENT,
                      dedupe_key=key, created_at=now)
    session.add(message)
    return message, True
