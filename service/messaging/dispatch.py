"""Sending what is due.

Routine rows are claimed batch after batch, each what the send rate sends in
DISPATCH_HORIZON_SECONDS (a fair share per clinic when several have rows due); urgent rows
(answers to a client, staff alerts) are claimed on their own as soon as one is written (woken by
PostgreSQL's NOTIFY or a write in this process) or every URGENT_POLL_SECONDS. Each message is
decided and rendered at send time and queued for a fixed pool of SEND_CONCURRENCY sender
coroutines. The queue hands a sender a message only when that message's sender (number, Messaging
Service) may start a send under its rate limit: an urgent one first, then each clinic's in turn.
Outcomes are recorded as they come (one statement every RECORD_EVERY_SECONDS). The next routine
batch is claimed and rendered while the current one is being sent.
Failures never lose a message: transient ones go back to pending with backoff, permanent ones fail
the row (and an SMS falls back to email where the client has one).
"""

import asyncio
import contextlib
import logging
import math
import threading
from collections import Counter, OrderedDict, deque, namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Session, select

from service.config import Config
from service.db import make_async_engine
from service.domain import careplan
from service.domain.messages import MessageKind
from service.domain.sendtime import SendTimeFacts, skip_reason
from service.messaging import outbox, phones
from service.messaging.calendar import appointment_ics
from service.messaging.channels import (
    Attachment,
    Channel,
    Outgoing,
    PermanentError,
    SendError,
    TransientError,
    build_channels,
)
from service.messaging.links import client_page_url
from service.messaging.rendering import Renderer, local_time_label
from service.models import Appointment, CheckIn, Client, Clinic, Escalation, Message, Visit, utcnow
from service.ops import heartbeat, metrics

log = logging.getLogger(__name__)

# Twilio's code for a number that replied STOP to Twilio itself: respect it as an opt-out.
TWILIO_UNSUBSCRIBED = "21610"
# Outcomes are written this often while a batch is being sent (the duplicates a SIGKILL can cause
# are the messages sent in the last moments before it, not a whole batch).
RECORD_EVERY_SECONDS = 0.05
RECORD_EVERY_ROWS = 128  # ... or as soon as this many wait (fewer, bigger statements: less CPU)
# A database step is tried this many times (about 30 s) before the tick gives up.
DB_ATTEMPTS = 20
RATE_WINDOW_SECONDS = 1.1  # N sends per 1.1 s: the 0.1 s covers a cold first request's setup
COLD_START_SECONDS = 0.1  # a process's first send to a sender: what its setup may delay it by
# A send the event loop starts at most this late (its timers fire up to a millisecond late) keeps
# the schedule: the next one is not delayed by as much, so the pace stays 1/spacing, and every
# start stays this close to a slot of the schedule (never more than `rate` in any second).
LATE_KEEPS_SCHEDULE_SECONDS = 0.002
PREPARE_CHUNK = 25  # rows rendered between two turns of the event loop
URGENT_ONLY, ROUTINE_ONLY = (outbox.URGENT,), (outbox.ROUTINE,)


# What sending needs of a message, its client and its visit: plain tuples read with SQLAlchemy
# Core, because building ORM objects was the largest cost of a batch after the sends themselves.
MessageRow = namedtuple("MessageRow", "id clinic_id client_id visit_id appointment_id escalation_id "
                        "kind channel recipient params status attempts due_at next_attempt_at "
                        "dedupe_key")
ClientRow = namedtuple("ClientRow", "id name language time_zone email sms_consent_at "
                       "sms_opted_out_at email_opted_out_at link_version")
VisitRow = namedtuple("VisitRow", "id client_id occurred_at visit_number channels")


@dataclass(slots=True)
class Row:
    message: MessageRow
    client: ClientRow | None
    clinic: Clinic
    visit: VisitRow | None
    appointment: Appointment | None
    escalation: Escalation | None


@dataclass(eq=False)
class _Batch:
    """One claimed batch in the senders' queue: done when its last send is recorded (a sender's
    error fails the whole drain instead: see _finished)."""

    remaining: int
    statuses: Counter  # outcomes so far, for the log line
    done: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def count_down(self) -> None:
        self.remaining -= 1
        if self.remaining <= 0 and not self.done.done():
            self.done.set_result(None)
            log.info("dispatched %d messages", sum(self.statuses.values()),
                     extra={"statuses": dict(self.statuses)})


class Dispatcher:
    def __init__(self, config: Config, engine: Engine, worker_id: str,
                 renderer: Renderer | None = None,
                 channel_factory: Callable[[Config], dict[str, Channel]] = build_channels):
        self.config = config
        self.engine = engine
        self.worker_id = worker_id
        self.renderer = renderer or Renderer()
        if renderer is None:  # a worker never edits its templates while running
            self.renderer.env.auto_reload = False
        self.channel_factory = channel_factory
        self._limiters: dict[str, SendRateLimiter] = {}  # per sender, kept from tick to tick
        self._rate = config.SEND_RATE_PER_SECOND  # this worker's share of it
        self._stopping = False
        self._woken = threading.Event()  # an urgent row was written since the last urgent look
        # The running drain's event loop and its urgent lane's wake-up, for wake().
        self._signal: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    def drain(self) -> int:
        """Dispatch until nothing is due; returns how many rows were handled. An idle tick stops
        at one indexed look (no event loop, no new connections)."""
        handled = 0
        while not self._stopping:
            self._woken.clear()
            with self.engine.connect() as conn:
                due = outbox.any_due(conn, utcnow())
            if due:
                handled += asyncio.run(self._drain())
            if not self._woken.is_set():  # else woken after the last look for urgent rows
                break
        if handled:
            log.info("drain finished: %d messages", handled)
        return handled

    def wake(self) -> bool:
        """An urgent row was written (callable from any thread): the running drain claims it
        at once. Returns False when no drain is running, for the caller to start one."""
        self._woken.set()
        signal = self._signal
        if signal is None:
            return False
        loop, wake = signal
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # that drain's loop has just closed: drain() looks again
            return False
        return True

    def urgent_waiting(self) -> bool:
        """An urgent row is due and no drain is running to claim it (one indexed look)."""
        if self._signal is not None:
            return False
        with self.engine.connect() as conn:
            return outbox.any_due(conn, utcnow(), URGENT_ONLY)

    def stop(self) -> None:
        """Claim nothing more; the batches in hand are still sent and recorded (on SIGTERM)."""
        self._stopping = True

    def reap(self) -> int:
        with self.engine.begin() as conn:
            return outbox.reap(conn, utcnow(), timedelta(seconds=self.config.CLAIM_TIMEOUT_SECONDS))

    def _batch_size(self) -> int:
        """Rows claimed at once: what this worker's rate sends in DISPATCH_HORIZON_SECONDS, so
        that claims stay small at a low rate (a clinic whose texts fall due meanwhile gets its
        share at the next claim, within about that long), and at most DISPATCH_BATCH_SIZE. A
        claim must also be sent well within CLAIM_TIMEOUT_SECONDS, or the reaper would give rows
        still in our hands to another worker (sent twice)."""
        cfg = self.config
        ahead = min(cfg.DISPATCH_HORIZON_SECONDS, cfg.CLAIM_TIMEOUT_SECONDS / 4)
        return max(1, min(cfg.DISPATCH_BATCH_SIZE, math.ceil(self._rate * ahead)))

    async def _drain(self) -> int:
        """The routine batches and the urgent lane share the senders, the rate limiters and the
        recorder. Outcomes are recorded as they come, every RECORD_EVERY_SECONDS: a worker
        killed mid-batch leaves only the last moments' sends unrecorded (they go again when the
        reaper gives their claims back). Database work is awaited on the event loop (an async
        engine), not run in threads: threads contending for the GIL with a loop this busy cost
        about a tenth of the worker's CPU."""
        loop = asyncio.get_running_loop()
        db = make_async_engine(self.engine.url)
        channels = metrics.timed(self.channel_factory(self.config))
        recorder = _Recorder(self, db)
        queue = SendQueue()
        failed = loop.create_future()  # a sender's or the urgent lane's error ends the drain
        # One sender more, for urgent sends only: an urgent text never waits for a routine
        # request to come back.
        senders = [asyncio.create_task(self._sender(queue, recorder, failed, urgent_only))
                   for urgent_only in [False] * self.config.SEND_CONCURRENCY + [True]]
        wake, routine_done = asyncio.Event(), asyncio.Event()
        self._signal = (loop, wake)
        lane = asyncio.create_task(self._urgent_lane(db, channels, recorder, queue, failed,
                                                     wake, routine_done))
        try:
            handled = await self._routine(db, channels, recorder, queue, failed)
            routine_done.set()
            wake.set()  # a last look for urgent rows, then the lane ends
            return handled + await lane
        finally:
            self._signal = None
            routine_done.set()
            wake.set()
            # The lane finishes its step (what it claimed is queued, not left to the reaper), and
            # what is queued is still sent and recorded, also after a failure elsewhere.
            await asyncio.gather(lane, return_exceptions=True)
            queue.close()
            await asyncio.gather(*senders, return_exceptions=True)
            if failed.done():
                failed.exception()  # raised where it was awaited
            try:
                await recorder.flush()
            finally:
                for channel in channels.values():
                    await channel.close()
                await db.dispose()

    async def _routine(self, db: AsyncEngine, channels: dict[str, Channel],
                       recorder: "_Recorder", queue: "SendQueue", failed: asyncio.Future) -> int:
        """Routine batches until none is due. The next batch is claimed and rendered once less
        than a batch waits in the queue: at most two wait, one being sent and the next behind
        it. (Waiting for whole batches to finish instead let one clinic's texts claimed before
        another's fill the gaps between the other's, each time the other ran out.)"""
        in_hand: deque[_Batch] = deque()
        handled = 0
        while not self._stopping:
            rows, answers, booked = await self._db(db, self._claim)
            if not rows:
                if in_hand:  # their outcomes may add due rows (email fallbacks)
                    await _finished(in_hand.popleft(), failed)
                    continue
                await recorder.flush()
                if not recorder.new_rows:
                    break
                recorder.new_rows = 0
                continue
            handled += len(rows)
            in_hand.append(await self._queue(rows, answers, booked, channels, recorder, queue,
                                             urgent=False))
            while in_hand and in_hand[0].done.done():
                in_hand.popleft()
            await _finished(queue.routine_below(self._batch_size()), failed)
        return handled

    async def _urgent_lane(self, db: AsyncEngine, channels: dict[str, Channel],
                           recorder: "_Recorder", queue: "SendQueue", failed: asyncio.Future,
                           wake: asyncio.Event, routine_done: asyncio.Event) -> int:
        """Urgent rows, claimed on their own as soon as one is written (wake) or every
        URGENT_POLL_SECONDS, and queued ahead of every routine text: they never wait for the
        routine batches in hand. At most two urgent batches in hand too: a flood of alerts is
        claimed no faster than it can be sent."""
        in_hand: deque[_Batch] = deque()
        handled = 0
        while not self._stopping:
            self._woken.clear()
            wake.clear()
            if await self._db(db, _urgent_due):
                rows, answers, booked = await self._db(db, self._claim, URGENT_ONLY)
                if rows:
                    handled += len(rows)
                    in_hand.append(await self._queue(rows, answers, booked, channels, recorder,
                                                     queue, urgent=True))
                    if len(in_hand) >= 2:
                        await _finished(in_hand.popleft(), failed)
                    continue
            if routine_done.is_set():
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.URGENT_POLL_SECONDS):
                    await wake.wait()
        return handled

    def _claim(self, conn: Connection, priorities: tuple[int, ...] = ROUTINE_ONLY,
               ) -> tuple[list[Row], dict[int, str], set[int]]:
        """Claims due rows and reads what sending them needs, in one transaction."""
        now = utcnow()
        if priorities == ROUTINE_ONLY:
            self._share_rate(conn, now)
        ids = outbox.claim_due(conn, self.worker_id, now, self._batch_size(), priorities)
        if not ids:
            return [], {}, set()
        with Session(bind=conn) as session:
            rows = _load(session, ids)
            return rows, *_send_time_state(session, rows)

    def _share_rate(self, conn: Connection, now: datetime) -> None:
        """SEND_RATE_PER_SECOND is the provider's limit for the whole service: each of n live
        workers (by their heartbeats) sends at most 1/n of it."""
        stale_after = timedelta(seconds=self.config.HEARTBEAT_STALE_SECONDS)
        workers = 1 + heartbeat.others_alive(conn, self.worker_id, now, stale_after)
        self._rate = self.config.SEND_RATE_PER_SECOND / workers
        for limiter in self._limiters.values():
            limiter.set_rate(self._rate)

    async def _db(self, db: AsyncEngine, fn, *args):
        """Runs fn(connection, *args) in a transaction, again while the database is unreachable
        (restarted, a connection killed): each database step here can be repeated safely, and
        an outcome must not be lost once its message went out."""
        delay = 0.05
        for attempt in range(DB_ATTEMPTS):
            try:
                async with db.begin() as conn:
                    return await conn.run_sync(fn, *args)
            except (OperationalError, InterfaceError) as exc:
                if attempt == DB_ATTEMPTS - 1:
                    raise
                log.warning("database unavailable, retrying in %.2f s: %s", delay,
                            str(exc).splitlines()[0][:200])
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _queue(self, rows: list[Row], answers: dict[int, str], booked: set[int],
                     channels: dict[str, Channel], recorder: "_Recorder", queue: "SendQueue",
                     urgent: bool) -> _Batch:
        batch, sends = await self._prepare(rows, answers, booked, channels, recorder)
        for row, outgoing, channel, limiter in sends:
            queue.put((batch, row, outgoing, channel), limiter, row.message.clinic_id, urgent)
        return batch

    async def _prepare(self, rows: list[Row], answers: dict[int, str], booked: set[int],
                       channels: dict[str, Channel],
                       recorder: "_Recorder") -> tuple[_Batch, list[tuple]]:
        """Decide at send time, and render each message of a claimed batch."""
        now = utcnow()
        sends, held = [], Counter()
        for n, row in enumerate(rows, start=1):
            if n % PREPARE_CHUNK == 0:
                await asyncio.sleep(0)  # rendering is CPU: let sends in flight go on meanwhile
            reason = self._hold_reason(row, now, answers, booked)
            if reason:
                status = "cancelled" if reason in ("opted_out", "no_consent") else "skipped"
                recorder.add(row, _outcome(row.message, status, error_code=reason))
                held[status] += 1
                # A STOP that raced the claim: the message goes by email, as after a failure.
                if reason == "opted_out" and row.message.channel == "sms":
                    if fallback := _email_fallback(row, now):
                        recorder.pending.fallbacks.append(fallback)
                continue
            try:
                outgoing = self._render(row)
            except Exception as exc:  # a template bug must fail one row, not the batch
                log.exception("render failed for message %s", row.message.id)
                recorder.add(row, _outcome(row.message, "failed", error_code="render",
                                           error_message=repr(exc)[:500]))
                held["failed"] += 1
                continue
            channel = channels[row.message.channel]
            limiter = self._limiters.get(channel.sender)
            if limiter is None:
                limiter = self._limiters[channel.sender] = SendRateLimiter(self._rate)
            sends.append((row, outgoing, channel, limiter))
        batch = _Batch(remaining=len(sends), statuses=held)
        if not sends:
            batch.count_down()
        return batch, sends

    async def _sender(self, queue: "SendQueue", recorder: "_Recorder", failed: asyncio.Future,
                      urgent_only: bool) -> None:
        """A long-lived sender: a task per message would cost more CPU than the rest of its
        bookkeeping. The queue hands it a message when that message's rate limit lets it start."""
        while (item := await queue.take(urgent_only)) is not None:
            batch, row, outgoing, channel = item
            try:
                await self._send(row, outgoing, channel, batch.statuses, recorder)
            except Exception as exc:
                if not failed.done():
                    failed.set_exception(exc)
                raise
            finally:
                batch.count_down()

    async def _send(self, row: Row, outgoing: Outgoing, channel: Channel, statuses: Counter,
                    recorder: "_Recorder") -> None:
        try:
            result = await channel.send(outgoing)
        except SendError as exc:
            result = exc
        except Exception as exc:  # unknown: keep the message and try again later
            log.exception("unexpected send error")
            result = TransientError(repr(exc)[:500], code="unexpected")
        sent_at = utcnow()
        outcome = self._result_outcome(row, outgoing, result, sent_at)
        statuses[outcome["status"]] += 1
        recorder.add(row, outcome)
        if isinstance(result, PermanentError) and row.message.channel == "sms":
            if result.code == TWILIO_UNSUBSCRIBED:
                recorder.pending.opted_out.append(row.client.id)
            if fallback := _email_fallback(row, sent_at):
                recorder.pending.fallbacks.append(fallback)
        elif isinstance(result, str) and row.message.channel == "sms" and row.client:
            recorder.pending.texted.append(row.client.id)

    def _hold_reason(self, row: Row, now: datetime, answers: dict, booked: set) -> str | None:
        message, client = row.message, row.client
        to_client = message.kind != MessageKind.STAFF_ALERT
        if message.channel == "email" and client is not None and to_client:
            if client.email_opted_out_at:
                return "opted_out"
        if message.channel == "sms" and client is not None and to_client:
            # Checked at send time: a STOP can arrive after the claim. The confirmation of that
            # STOP is the one text an opted-out number still gets.
            if client.sms_opted_out_at and message.kind != "opt_out_confirmation":
                return "opted_out"
            if not client.sms_consent_at and message.kind in careplan.PLAN_KINDS:
                return "no_consent"  # answering a text the client sent needs no prior consent
        appointment = row.appointment
        return skip_reason(SendTimeFacts(
            kind=message.kind, now=now,
            visit_at=row.visit and row.visit.occurred_at,
            last_answer=answers.get(message.visit_id),
            appointment_at=appointment and appointment.starts_at,
            appointment_cancelled=bool(appointment and appointment.status == "cancelled"),
            booked_since_visit=message.client_id in booked,
        ))

    def _render(self, row: Row) -> Outgoing:
        message, client, clinic, visit = row.message, row.client, row.clinic, row.visit
        staff = message.kind == MessageKind.STAFF_ALERT
        # Staff read English; an answer to a client's text is in the language they wrote it in.
        language = "en" if staff or not client else message.params.get("language") or client.language
        zone = client.time_zone if client else clinic.time_zone
        appointment = row.appointment
        params = message.params
        if params.get("team_sees_at"):  # when a held alert reaches the team, as the client reads it
            params = {**params, "team_sees_at": local_time_label(
                datetime.fromisoformat(params["team_sees_at"]), zone, language)}
        # Numbers as the reader dials them: the region of the phone that gets this text (for an
        # email, the clinic's own). Lazy, like the labels below: parsing a number costs more than
        # rendering most texts, and most texts show none.
        region = _Lazy(lambda: phones.region_of(
            message.recipient if message.channel == "sms" else clinic.phone))
        context = {
            "client_name": client.name if staff else (client.name.split() or [""])[0],
            "clinic_name": clinic.name,
            "clinic_phone": _Lazy(lambda: phones.display(clinic.phone, str(region))),
            "clinic_tel": _Lazy(lambda: phones.tel_href(clinic.phone)),
            "emergency_number": _Lazy(lambda: phones.emergency_number(str(region))),
            "first_visit": bool(visit and visit.visit_number == 1),
            # A late enrolment's window text says the window began at the session, not now.
            "window_started_earlier": bool(
                visit and careplan.window_started_earlier(visit.occurred_at, utcnow())),
            # Lazy: formatted only if the template shows them (babel and signing are costly).
            "window_ends": visit and _Lazy(lambda: local_time_label(
                careplan.window_ends_at(visit.occurred_at), zone, language)),
            "appointment": appointment and _Lazy(lambda: local_time_label(
                appointment.starts_at, zone, language, with_date=True)),
            "page_url": _Lazy(lambda: client_page_url(self.config, client.id, client.link_version))
            if not staff else None,
            "answer": None,
            "client_url": f"{self.config.PUBLIC_BASE_URL}/clients/{client.id}",
            "severity": row.escalation and row.escalation.severity,
            "reasons": row.escalation.reasons if row.escalation else [],
            "reply_text": None,
            "renotify_count": 0,
            "team_sees_at": None,
            **params,
        }
        wording = clinic.plan_overrides.get("wording", {}).get(language)
        rendered = self.renderer.render(message.kind, message.channel, language, context, wording)
        attachments = ()
        if message.channel == "email" and appointment and message.kind == careplan.APPOINTMENT_REMINDER:
            ics = appointment_ics(appointment.id, appointment.starts_at, clinic.name, clinic.phone)
            attachments = (Attachment("appointment.ics", "text/calendar", ics),)
        callback = None
        if message.channel == "sms":
            callback = f"{self.config.PUBLIC_BASE_URL}/webhooks/twilio/status?m={message.id}"
        return Outgoing(to=message.recipient, body=rendered.body, subject=rendered.subject,
                        html=rendered.html, attachments=attachments, status_callback=callback)

    def _result_outcome(self, row: Row, outgoing: Outgoing, result, now: datetime) -> dict:
        message = row.message
        if isinstance(result, str):
            return _outcome(message, "sent", True, provider_id=result, body=outgoing.body,
                            sent_at=now)
        if isinstance(result, PermanentError) or message.attempts + 1 >= self.config.MAX_SEND_ATTEMPTS:
            return _outcome(message, "failed", True, error_code=result.code,
                            error_message=str(result))
        retry_at = now + outbox.backoff(message.attempts + 1, result.retry_after,
                                        base=self.config.RETRY_BACKOFF_SECONDS,
                                        cap=self.config.RETRY_BACKOFF_MAX_SECONDS)
        if row.client and message.kind in careplan.PLAN_KINDS:
            retry_at = careplan.defer_for_quiet_hours(retry_at, row.client.time_zone,
                                                      row.clinic.plan_settings())
        return _outcome(message, "pending", True, next_attempt_at=retry_at,
                        error_code=result.code, error_message=str(result))


async def _finished(what: "_Batch | asyncio.Future", failed: asyncio.Future) -> None:
    """Waits until the batch's last outcome is in (or the future is done), or raises what made
    the drain fail."""
    done = what.done if isinstance(what, _Batch) else what
    if not done.done() and not failed.done():
        await asyncio.wait((done, failed), return_when=asyncio.FIRST_COMPLETED)
    if failed.done():
        failed.result()


def _urgent_due(conn: Connection) -> bool:
    return outbox.any_due(conn, utcnow(), URGENT_ONLY)


def _outcome(message: MessageRow, status: str, attempted: bool = False, **changes) -> dict:
    """A full row of outbox.OUTCOME_KEYS: what is not said is cleared or kept as it was."""
    return {
        "status": status,
        "attempts": message.attempts + attempted,
        "next_attempt_at": message.next_attempt_at,
        "provider_id": None, "error_code": None, "error_message": None, "body": None,
        "sent_at": None,
    } | changes


_message, _client, _visit = Message.__table__, Client.__table__, Visit.__table__
_LOAD = core_select(
    *(_message.c[name] for name in MessageRow._fields),
    *(_client.c[name] for name in ClientRow._fields),
    *(_visit.c[name] for name in VisitRow._fields),
).select_from(
    _message.outerjoin(_client, _message.c.client_id == _client.c.id)
    .outerjoin(_visit, _message.c.visit_id == _visit.c.id)
)
_CLIENT_AT = len(MessageRow._fields)
_VISIT_AT = _CLIENT_AT + len(ClientRow._fields)


def _load(session: Session, ids: list[int]) -> list[Row]:
    found = [(MessageRow._make(r[:_CLIENT_AT]),
              ClientRow._make(r[_CLIENT_AT:_VISIT_AT]) if r[_CLIENT_AT] is not None else None,
              VisitRow._make(r[_VISIT_AT:]) if r[_VISIT_AT] is not None else None)
             for r in session.execute(_LOAD.where(_message.c.id.in_(ids))
                                      .order_by(_message.c.next_attempt_at, _message.c.id))]
    # Clinics, appointments and escalations are few per batch: each is read once, not joined
    # into every row (a wave's rows have none of the last two; a clinic's JSON columns cost).
    clinics = _by_id(session, Clinic, {m.clinic_id for m, _, _ in found})
    appointments = _by_id(session, Appointment, {m.appointment_id for m, _, _ in found})
    escalations = _by_id(session, Escalation, {m.escalation_id for m, _, _ in found})
    return [Row(m, client, clinics[m.clinic_id], visit, appointments.get(m.appointment_id),
                escalations.get(m.escalation_id)) for m, client, visit in found]


def _by_id(session: Session, model, ids: set[int | None]) -> dict:
    ids.discard(None)
    if not ids:
        return {}
    return {row.id: row for row in session.exec(select(model).where(model.id.in_(ids)))}


def _send_time_state(session: Session, rows: list[Row]) -> tuple[dict[int, str], set[int]]:
    """The facts send-time rules need, fetched once per batch: the latest check-in answer per
    visit (follow-ups) and the clients who booked after the visit (rebooking nudges)."""
    followups = {r.visit.id for r in rows if r.message.kind == careplan.FOLLOWUP and r.visit}
    answers = {}
    if followups:
        checkins = session.exec(
            select(CheckIn).where(CheckIn.visit_id.in_(followups), CheckIn.answer.is_not(None))
            .order_by(CheckIn.created_at)
        ).all()
        answers = {c.visit_id: c.answer for c in checkins}
    nudged = {r.visit.client_id: r.visit.occurred_at
              for r in rows if r.message.kind == careplan.REBOOK_NUDGE and r.visit}
    booked = set()
    if nudged:
        appointments = session.exec(
            select(Appointment).where(Appointment.client_id.in_(nudged),
                                      Appointment.status != "cancelled")
        ).all()
        booked = {a.client_id for a in appointments if a.created_at > nudged[a.client_id]}
    return answers, booked


def _email_fallback(row: Row, now: datetime) -> dict | None:
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


def _after_sends(conn, fallbacks: list[dict], opted_out: list[int], texted: list[int],
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


class _Lazy:
    """A template value made on first use: Jinja prints it with str() and tests it with bool().
    What it makes is GSM-7 safe already (local_time_label, an ASCII link)."""

    __slots__ = ("_make", "_value")

    def __init__(self, make: Callable[[], str]):
        self._make, self._value = make, None

    def __str__(self) -> str:
        if self._value is None:
            self._value = self._make() or ""
        return self._value

    def __bool__(self) -> bool:
        return bool(str(self))


class SendRateLimiter:
    """One sender's pace (a number, a Messaging Service, an inbox): sends start evenly spaced,
    RATE_WINDOW_SECONDS / rate apart, so the provider never sees more than `rate` in any second.

    A token bucket (such as aiolimiter) lets a full burst follow a second already at the limit: up to
    twice the rate in one second. Here each send that starts sets the next start time instead,
    10% over 1/rate after it, so that jitter (a process's first request also opens its
    connection and loads Twilio's modules: ~75 ms) cannot squeeze rate + 1 arrivals into one
    second. One limiter serves one worker process, at its share of the service's rate; the
    SendQueue decides which message takes each start."""

    def __init__(self, rate: float):
        self.set_rate(rate)
        self.ready_at = 0.0  # when the next send may start, on the event loop's clock
        self._cold = True

    def set_rate(self, rate: float) -> None:
        per_window = math.floor(rate) if rate >= 1 else rate  # "2.5/s" allows 2 in a second
        self.spacing = RATE_WINDOW_SECONDS / per_window

    def start(self, now: float) -> None:
        """A send starts now (never before ready_at): the next one a spacing after this one's
        slot (ready_at, when now is at most LATE_KEEPS_SCHEDULE_SECONDS past it, else now).
        After the very first, which also loads the client and so may arrive late, the next one
        waits longer."""
        slot = self.ready_at if now - self.ready_at <= LATE_KEEPS_SCHEDULE_SECONDS else now
        self.ready_at = slot + self.spacing
        if self._cold:
            self._cold = False
            self.ready_at += COLD_START_SECONDS


class _Line:
    """What waits for one sender's next start: urgent messages first, then each clinic's in
    turn, each clinic's oldest first."""

    __slots__ = ("limiter", "urgent", "routine")

    def __init__(self, limiter: SendRateLimiter):
        self.limiter = limiter
        self.urgent: deque = deque()
        self.routine: OrderedDict[int, deque] = OrderedDict()  # by clinic, in turn

    def pop(self):
        if self.urgent:
            return self.urgent.popleft()
        clinic, waiting = next(iter(self.routine.items()))
        item = waiting.popleft()
        if waiting:
            self.routine.move_to_end(clinic)
        else:
            del self.routine[clinic]
        return item


class SendQueue:
    """The senders' queue. A sender is handed a message only when that message's sender may
    start a send (its SendRateLimiter), so no sender holds a routine text while it waits for the
    rate: each start goes to an urgent message first, then to each clinic in turn (one clinic's
    wave does not hold another's texts behind it), and different senders take turns. Senders
    waiting for messages are served in the order they came."""

    def __init__(self) -> None:
        self._lines: OrderedDict[SendRateLimiter, _Line] = OrderedDict()
        self._queued = 0
        self._urgent = 0
        self._idle: deque[asyncio.Future] = deque()  # senders waiting
        self._idle_urgent: deque[asyncio.Future] = deque()  # ... for urgent messages only
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._low: tuple[int, asyncio.Future] | None = None  # see routine_below

    def put(self, item, limiter: SendRateLimiter, clinic_id: int, urgent: bool) -> None:
        line = self._lines.get(limiter)
        if line is None:
            line = self._lines[limiter] = _Line(limiter)
        if urgent:
            line.urgent.append(item)
            self._urgent += 1
        elif (waiting := line.routine.get(clinic_id)) is not None:
            waiting.append(item)
        else:
            line.routine[clinic_id] = deque((item,))
        self._queued += 1
        if self._idle or self._idle_urgent:
            self._hand_out()

    def routine_below(self, count: int) -> asyncio.Future:
        """Done once fewer than `count` routine messages wait to be handed out."""
        low = asyncio.get_running_loop().create_future()
        if self._queued - self._urgent < count:
            low.set_result(None)
        else:
            self._low = (count, low)
        return low

    def close(self) -> None:
        """Nothing more is put: take() returns None once everything was handed out."""
        self._closed = True
        self._hand_out()

    async def take(self, urgent_only: bool = False):
        """The next message that may start now, waiting for one; None once closed and empty."""
        idle = self._idle_urgent if urgent_only else self._idle
        loop = asyncio.get_running_loop()
        if not idle:
            item = self._next(loop.time(), urgent_only)
            if item is not None:
                return item
        if self._closed and not (self._urgent if urgent_only else self._queued):
            return None
        waiter = loop.create_future()
        idle.append(waiter)
        self._arm()
        return await waiter

    def _next(self, now: float, urgent_only: bool):
        """Takes the message to start now, or None while no sender with one queued may start."""
        chosen = None
        for line in self._lines.values():
            if line.limiter.ready_at > now:
                continue
            if line.urgent:
                chosen = line
                break
            if chosen is None and line.routine and not urgent_only:
                chosen = line
        if chosen is None:
            return None
        self._urgent -= bool(chosen.urgent)
        self._queued -= 1
        if self._low is not None and self._queued - self._urgent < self._low[0]:
            if not self._low[1].done():
                self._low[1].set_result(None)
            self._low = None
        chosen.limiter.start(now)
        self._lines.move_to_end(chosen.limiter)
        return chosen.pop()

    def _hand_out(self) -> None:
        now = asyncio.get_running_loop().time()
        for idle, urgent_only in ((self._idle_urgent, True), (self._idle, False)):
            while idle and idle[0].done():  # a sender cancelled while waiting
                idle.popleft()
            while idle and (self._urgent if urgent_only else self._queued):
                item = self._next(now, urgent_only)
                if item is None:
                    break
                idle.popleft().set_result(item)
            if self._closed and not (self._urgent if urgent_only else self._queued):
                while idle:
                    waiter = idle.popleft()
                    if not waiter.done():
                        waiter.set_result(None)
        self._arm()

    def _arm(self) -> None:
        """Hands out again when the first sender with a message for a waiting sender may start."""
        starts = [line.limiter.ready_at for line in self._lines.values()
                  if (line.urgent and (self._idle or self._idle_urgent))
                  or (line.routine and self._idle)]
        if not starts:
            return
        at = min(starts)
        if self._timer is not None:
            if self._timer.when() <= at:
                return
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._hand_out()


@dataclass
class _Unrecorded:
    outcomes: dict[int, dict] = field(default_factory=dict)
    messages: list[MessageRow] = field(default_factory=list)
    fallbacks: list[dict] = field(default_factory=list)  # email rows to insert
    opted_out: list[int] = field(default_factory=list)  # clients Twilio says unsubscribed
    texted: list[int] = field(default_factory=list)  # clients who were just texted


class _Recorder:
    """Outcomes waiting to be written: flushed every RECORD_EVERY_SECONDS, or at once when
    RECORD_EVERY_ROWS wait, in one short transaction (retried if the database is away, while the
    sends go on)."""

    def __init__(self, dispatcher: Dispatcher, db: AsyncEngine):
        self.dispatcher = dispatcher
        self.db = db
        self.pending = _Unrecorded()
        self.new_rows = 0  # email fallbacks written: rows that may be due at once
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Future | None = None
        self._error: BaseException | None = None

    def add(self, row: Row, outcome: dict) -> None:
        self.pending.outcomes[row.message.id] = outcome
        self.pending.messages.append(row.message)
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
            await self.dispatcher._db(self.db, _record_batch, batch)
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
    _after_sends(conn, batch.fallbacks, batch.opted_out, batch.texted, utcnow())
