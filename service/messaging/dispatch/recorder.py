"""Recording outcomes: what each send (or send-time decision) left the row as, written in batches
with what follows from it (an email fallback, an opt-out Twilio reported, when a client was last
texted)."""

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Config
from service.domain import careplan, sendtime
from service.domain.messages import MessageKind, MessageStatus
from service.messaging import outbox
from service.messaging.channels import Outgoing, PermanentError
from service.messaging.dispatch.database import in_transaction
from service.messaging.dispatch.load import MessageRow, Row
from service.models import Client, Clinic, utcnow
from service.ops import metrics

log = logging.getLogger(__name__)

# Outcomes are written this often while a batch is being sent (the duplicates a SIGKILL can cause
# are the messages sent in the last moments before it, not a whole batch).
RECORD_EVERY_SECONDS = 0.05
RECORD_EVERY_ROWS = 128  # ... or as soon as this many wait (fewer, bigger statements: less CPU)


def outcome(message: MessageRow, status: str, attempted: bool = False, **changes) -> dict:
    """A full row of outbox.OUTCOME_KEYS: what is not said is cleared or kept as it was."""
    return {
        "status": status,
        "attempts": message.attempts + attempted,
        "next_attempt_at": message.next_attempt_at,
        "provider_id": None, "error_code": None, "error_message": None, "body": None,
        "sent_at": None,
    } | changes


def held_outcome(row: Row, reason: str, now: datetime) -> dict:
    """A message held at send time (domain/sendtime.py): cancelled or skipped; or, over its
    clinic's daily cap, pending again from the clinic's next midnight, after the client's quiet
    hours."""
    status = sendtime.held_status(reason)
    if status != MessageStatus.PENDING:
        return outcome(row.message, status, error_code=reason)
    again = sendtime.next_day(now, row.clinic.time_zone)
    if row.client:
        again = careplan.defer_for_quiet_hours(again, row.client.time_zone,
                                               row.clinic.plan_settings())
    return outcome(row.message, status, error_code=reason, next_attempt_at=again)


def cap_alerts(clinic: Clinic, now: datetime) -> list[dict]:
    """The on-call emails' alert that the clinic reached its daily send cap: one per local day
    (by dedupe key: the batches after the first add nothing)."""
    day = sendtime.day_started(now, clinic.time_zone).date()
    return [{
        "clinic_id": clinic.id, "kind": MessageKind.STAFF_ALERT, "channel": "email",
        "recipient": email, "params": {"daily_send_cap": clinic.daily_send_cap},
        "due_at": now, "next_attempt_at": now, "status": MessageStatus.PENDING, "attempts": 0,
        "priority": outbox.URGENT, "dedupe_key": f"cap:{clinic.id}:{day}:{n}", "created_at": now,
    } for n, email in enumerate(clinic.on_call_emails)]


def send_outcome(row: Row, outgoing: Outgoing, result, now: datetime, config: Config) -> dict:
    """What a send's result (a provider id, or the SendError) leaves the row as: sent, failed,
    or pending again with backoff (and after quiet hours, for a plan message)."""
    message = row.message
    if isinstance(result, str):
        return outcome(message, "sent", True, provider_id=result, body=outgoing.body,
                       sent_at=now)
    if isinstance(result, PermanentError) or message.attempts + 1 >= config.MAX_SEND_ATTEMPTS:
        return outcome(message, "failed", True, error_code=result.code,
                       error_message=str(result))
    retry_at = now + outbox.backoff(message.attempts + 1, result.retry_after,
                                    base=config.RETRY_BACKOFF_SECONDS,
                                    cap=config.RETRY_BACKOFF_MAX_SECONDS)
    if row.client and message.kind in careplan.PLAN_KINDS:
        retry_at = careplan.defer_for_quiet_hours(retry_at, row.client.time_zone,
                                                  row.clinic.plan_settings())
    return outcome(message, "pending", True, next_attempt_at=retry_at,
                   error_code=result.code, error_message=str(result))


def email_fallback(row: Row, now: datetime) -> dict | None:
    """A plan SMS that cannot reach the client (a permanent failure, an opt-out) goes by email
    now. Its key is the planned email's: a message the visit also emails (both channels chosen)
    is not added twice, and one cancelled for its channel goes after all (outbox.add_or_reopen)."""
    client, message = row.client, row.message
    if (message.kind not in careplan.PLAN_KINDS or not client or not client.email
            or client.email_opted_out_at):
        return None
    return {
        "clinic_id": message.clinic_id, "client_id": client.id, "visit_id": message.visit_id,
        "appointment_id": message.appointment_id, "kind": message.kind, "channel": "email",
        "recipient": client.email, "due_at": now, "next_attempt_at": now, "status": "pending",
        "attempts": 0, "dedupe_key": f"visit:{message.visit_id}:{message.kind}:email",
        "created_at": now,
    }


def after_sends(conn, fallbacks: list[dict], opted_out: list[int], texted: list[int],
                now: datetime) -> None:
    outbox.add_or_reopen(conn, fallbacks)  # by dedupe key: a second fallback is a no-op
    if opted_out:
        conn.execute(update(Client.__table__)
                     .where(Client.id.in_(opted_out), Client.sms_opted_out_at.is_(None))
                     .values(sms_opted_out_at=now))
    if texted:
        conn.execute(update(Client.__table__).where(Client.id.in_(bindparam(
            "texted", sorted(set(texted)), expanding=True, literal_execute=True)))
                     .values(last_messaged_at=now))


@dataclass
class _Unrecorded:
    outcomes: dict[int, dict] = field(default_factory=dict)
    messages: list[MessageRow] = field(default_factory=list)
    fallbacks: list[dict] = field(default_factory=list)  # email rows to insert
    opted_out: list[int] = field(default_factory=list)  # clients Twilio says unsubscribed
    texted: list[int] = field(default_factory=list)  # clients who were just texted
    alerts: list[dict] = field(default_factory=list)  # staff alerts to insert (cap_alerts)


class Recorder:
    """Outcomes waiting to be written: flushed every RECORD_EVERY_SECONDS, or at once when
    RECORD_EVERY_ROWS wait, in one short transaction (retried if the database is away, while the
    sends go on)."""

    def __init__(self, db: AsyncEngine):
        self.db = db
        self.pending = _Unrecorded()
        self.new_rows = 0  # email fallbacks written: rows that may be due at once
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Future | None = None
        self._error: BaseException | None = None

    def add(self, row: Row, outcome: dict, fallback: dict | None = None,
            unsubscribed: bool = False, texted: bool = False, alerts: list[dict] = ()) -> None:
        """The row's outcome; with the email that replaces it (see email_fallback), whether
        Twilio says its client unsubscribed, whether its client was just texted, the staff
        alerts it causes (see cap_alerts)."""
        pending = self.pending
        pending.outcomes[row.message.id] = outcome
        pending.messages.append(row.message)
        if unsubscribed:
            pending.opted_out.append(row.client.id)
        if fallback:
            pending.fallbacks.append(fallback)
        if texted:
            pending.texted.append(row.client.id)
        pending.alerts += alerts
        self._schedule()

    def _schedule(self) -> None:
        if self._flushing is not None or not self.pending.outcomes:
            return
        if len(self.pending.outcomes) >= RECORD_EVERY_ROWS:
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(RECORD_EVERY_SECONDS,
                                                                self._start)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flushing = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        batch, self.pending = self.pending, _Unrecorded()
        try:
            await in_transaction(self.db, _record_batch, batch)
            self.new_rows += len(batch.fallbacks)
            metrics.observe_dispatch(batch.messages, batch.outcomes)
        except BaseException as exc:  # the rows stay claimed: the reaper gives them back
            log.exception("recording %d outcomes failed", len(batch.outcomes))
            self._error = exc
        finally:
            self._flushing = None
            self._schedule()

    async def flush(self) -> None:
        """Writes everything added so far (or raises what went wrong)."""
        if self._flushing is not None:
            await self._flushing
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.pending.outcomes:
            self._flushing = asyncio.ensure_future(self._write())
            await self._flushing
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _record_batch(conn: Connection, batch: _Unrecorded) -> None:
    outbox.record(conn, batch.outcomes)
    after_sends(conn, batch.fallbacks, batch.opted_out, batch.texted, utcnow())
    outbox.add_once(conn, batch.alerts)
