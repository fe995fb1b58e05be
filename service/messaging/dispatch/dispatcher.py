"""Sending what is due: the drain's orchestration (claiming, queueing, the senders).

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
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import Session

from service.config import Config
from service.db import make_async_engine
from service.domain.sendtime import DAILY_CAP, counts_toward_cap, hold_reason
from service.messaging import outbox
from service.messaging.channels import (
    Channel,
    Outgoing,
    PermanentError,
    SendError,
    TransientError,
    build_channels,
)
from service.messaging.channels.timed import timed
from service.messaging.dispatch.compose import render
from service.messaging.dispatch.database import in_transaction
from service.messaging.dispatch.load import (
    BatchFacts,
    Row,
    claimed_rows,
    send_time_facts,
    send_time_state,
)
from service.messaging.dispatch.pacing import SendQueue, SendRateLimiter
from service.messaging.dispatch.recorder import (
    Recorder,
    cap_alerts,
    email_fallback,
    held_outcome,
    outcome,
    send_outcome,
)
from service.messaging.rendering import Renderer
from service.models import utcnow
from service.ops import heartbeat

log = logging.getLogger(__name__)

# Twilio's code for a number that replied STOP to Twilio itself: respect it as an opt-out.
TWILIO_UNSUBSCRIBED = "21610"
PREPARE_CHUNK = 25  # rows rendered between two turns of the event loop
URGENT_ONLY, ROUTINE_ONLY = (outbox.URGENT,), (outbox.ROUTINE,)


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
        channels = timed(self.channel_factory(self.config))
        recorder = Recorder(db)
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
                       recorder: Recorder, queue: SendQueue, failed: asyncio.Future) -> int:
        """Routine batches until none is due. The next batch is claimed and rendered once less
        than a batch waits in the queue: at most two wait, one being sent and the next behind
        it. (Waiting for whole batches to finish instead let one clinic's texts claimed before
        another's fill the gaps between the other's, each time the other ran out.)"""
        in_hand: deque[_Batch] = deque()
        handled = 0
        while not self._stopping:
            rows, facts = await in_transaction(db, self._claim)
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
            in_hand.append(await self._queue(rows, facts, channels, recorder, queue, urgent=False))
            while in_hand and in_hand[0].done.done():
                in_hand.popleft()
            await _finished(queue.routine_below(self._batch_size()), failed)
        return handled

    async def _urgent_lane(self, db: AsyncEngine, channels: dict[str, Channel],
                           recorder: Recorder, queue: SendQueue, failed: asyncio.Future,
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
            if await in_transaction(db, _urgent_due):
                rows, facts = await in_transaction(db, self._claim, URGENT_ONLY)
                if rows:
                    handled += len(rows)
                    in_hand.append(await self._queue(rows, facts, channels, recorder, queue,
                                                     urgent=True))
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
               ) -> tuple[list[Row], BatchFacts]:
        """Claims due rows and reads what sending them needs, in one transaction."""
        now = utcnow()
        if priorities == ROUTINE_ONLY:
            self._share_rate(conn, now)
        ids = outbox.claim_due(conn, self.worker_id, now, self._batch_size(), priorities)
        if not ids:
            return [], BatchFacts()
        with Session(bind=conn) as session:
            rows = claimed_rows(session, ids)
            return rows, send_time_state(session, rows, now)

    def _share_rate(self, conn: Connection, now: datetime) -> None:
        """SEND_RATE_PER_SECOND is the provider's limit for the whole service: each of n live
        workers (by their heartbeats) sends at most 1/n of it."""
        stale_after = timedelta(seconds=self.config.HEARTBEAT_STALE_SECONDS)
        workers = 1 + heartbeat.others_alive(conn, self.worker_id, now, stale_after)
        self._rate = self.config.SEND_RATE_PER_SECOND / workers
        for limiter in self._limiters.values():
            limiter.set_rate(self._rate)

    async def _queue(self, rows: list[Row], facts: BatchFacts, channels: dict[str, Channel],
                     recorder: Recorder, queue: SendQueue, urgent: bool) -> _Batch:
        batch, sends = await self._prepare(rows, facts, channels, recorder)
        for row, outgoing, channel, limiter in sends:
            queue.put((batch, row, outgoing, channel), limiter, row.message.clinic_id, urgent)
        return batch

    async def _prepare(self, rows: list[Row], facts: BatchFacts, channels: dict[str, Channel],
                       recorder: Recorder) -> tuple[_Batch, list[tuple]]:
        """Decide at send time, and render each message of a claimed batch. A clinic's plan
        texts sent from the batch count toward its daily cap as they are decided: a batch that
        crosses the cap sends only what was left of it."""
        now = utcnow()
        sends, held, capped = [], Counter(), set()
        for n, row in enumerate(rows, start=1):
            if n % PREPARE_CHUNK == 0:
                await asyncio.sleep(0)  # rendering is CPU: let sends in flight go on meanwhile
            message, clinic = row.message, row.clinic
            reason = hold_reason(send_time_facts(row, now, facts))
            if reason:
                held_as = held_outcome(row, reason, now)
                # A STOP that raced the claim: the message goes by email, as after a failure.
                raced_stop = reason == "opted_out" and message.channel == "sms"
                # The first text a clinic's cap holds alerts its on-call emails (once a day).
                alerts = ()
                if reason == DAILY_CAP and clinic.id not in capped:
                    capped.add(clinic.id)
                    alerts = cap_alerts(clinic, now)
                recorder.add(row, held_as, alerts=alerts,
                             fallback=email_fallback(row, now) if raced_stop else None)
                held[held_as["status"]] += 1
                continue
            try:
                outgoing = render(row, self.config, self.renderer)
            except Exception as exc:  # a template bug must fail one row, not the batch
                log.exception("render failed for message %s", row.message.id)
                recorder.add(row, outcome(row.message, "failed", error_code="render",
                                          error_message=repr(exc)[:500]))
                held["failed"] += 1
                continue
            if clinic.id in facts.texted_today and counts_toward_cap(message.kind, message.channel):
                facts.texted_today[clinic.id] += 1
            channel = channels[row.message.channel]
            sender = outgoing.sender or channel.sender  # a clinic's own number has its own rate
            limiter = self._limiters.get(sender)
            if limiter is None:
                limiter = self._limiters[sender] = SendRateLimiter(self._rate)
            sends.append((row, outgoing, channel, limiter))
        batch = _Batch(remaining=len(sends), statuses=held)
        if not sends:
            batch.count_down()
        return batch, sends

    async def _sender(self, queue: SendQueue, recorder: Recorder, failed: asyncio.Future,
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
                    recorder: Recorder) -> None:
        try:
            result = await channel.send(outgoing)
        except SendError as exc:
            result = exc
        except Exception as exc:  # unknown: keep the message and try again later
            log.exception("unexpected send error")
            result = TransientError(repr(exc)[:500], code="unexpected")
        sent_at = utcnow()
        result_outcome = send_outcome(row, outgoing, result, sent_at, self.config)
        statuses[result_outcome["status"]] += 1
        sms = row.message.channel == "sms"
        failed_sms = sms and isinstance(result, PermanentError)
        recorder.add(row, result_outcome,
                     fallback=email_fallback(row, sent_at) if failed_sms else None,
                     unsubscribed=failed_sms and result.code == TWILIO_UNSUBSCRIBED,
                     texted=sms and isinstance(result, str) and row.client is not None)


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
