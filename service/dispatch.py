"""Sending what is due.

One round: claim a batch of due rows, decide and render each message at send time, send them with
many requests in flight within each sender's rate limit, then record every outcome in one statement.
Failures never lose a message: transient ones go back to pending with backoff, permanent ones fail
the row (and an SMS falls back to email where the client has one).
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiolimiter import AsyncLimiter
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from service import metrics, outbox
from service.calendar import appointment_ics
from service.channels import (
    Attachment,
    Channel,
    Outgoing,
    PermanentError,
    SendError,
    TransientError,
    build_channels,
)
from service.config import Config
from service.domain import careplan
from service.domain.sendtime import SendTimeFacts, skip_reason
from service.escalations import STAFF_ALERT
from service.links import client_page_url
from service.models import Appointment, CheckIn, Client, Clinic, Escalation, Message, Visit, utcnow
from service.rendering import Renderer, local_time_label

log = logging.getLogger(__name__)

# Twilio's code for a number that replied STOP to Twilio itself: respect it as an opt-out.
TWILIO_UNSUBSCRIBED = "21610"


@dataclass
class Row:
    message: Message
    client: Client | None
    clinic: Clinic
    visit: Visit | None
    appointment: Appointment | None
    escalation: Escalation | None


class Dispatcher:
    def __init__(self, config: Config, engine: Engine, worker_id: str,
                 renderer: Renderer | None = None,
                 channel_factory: Callable[[Config], dict[str, Channel]] = build_channels):
        self.config = config
        self.engine = engine
        self.worker_id = worker_id
        self.renderer = renderer or Renderer()
        self.channel_factory = channel_factory

    def drain(self) -> int:
        """Dispatch batch after batch until nothing is due; returns how many rows were handled."""
        return asyncio.run(self._drain())

    def reap(self) -> int:
        with self.engine.begin() as conn:
            return outbox.reap(conn, utcnow(), timedelta(seconds=self.config.CLAIM_TIMEOUT_SECONDS))

    async def _drain(self) -> int:
        channels = metrics.timed(self.channel_factory(self.config))
        limiters: dict[str, AsyncLimiter] = {}
        handled = 0
        try:
            while True:
                with self.engine.begin() as conn:
                    ids = outbox.claim_due(conn, self.worker_id, utcnow(),
                                           self.config.DISPATCH_BATCH_SIZE)
                if not ids:
                    return handled
                await self._dispatch(ids, channels, limiters)
                handled += len(ids)
        finally:
            for channel in channels.values():
                await channel.close()

    async def _dispatch(self, ids: list[int], channels: dict[str, Channel],
                        limiters: dict[str, AsyncLimiter]) -> None:
        with Session(self.engine) as session:
            rows = _load(session, ids)
            answers, booked = _send_time_state(session, rows)
        now = utcnow()
        outcomes: dict[int, dict] = {}
        sends = []
        for row in rows:
            reason = self._hold_reason(row, now, answers, booked)
            if reason:
                status = "cancelled" if reason in ("opted_out", "no_consent") else "skipped"
                outcomes[row.message.id] = _outcome(row.message, status, error_code=reason)
                continue
            try:
                outgoing = self._render(row)
            except Exception as exc:  # a template bug must fail one row, not the batch
                log.exception("render failed for message %s", row.message.id)
                outcomes[row.message.id] = _outcome(row.message, "failed", error_code="render",
                                                    error_message=repr(exc)[:500])
                continue
            channel = channels[row.message.channel]
            limiter = limiters.setdefault(
                channel.sender, AsyncLimiter(self.config.SEND_RATE_PER_SECOND, 1))
            sends.append((row, outgoing, channel, limiter))

        slots = asyncio.Semaphore(self.config.SEND_CONCURRENCY)

        async def send(outgoing: Outgoing, channel: Channel, limiter: AsyncLimiter):
            async with slots, limiter:
                try:
                    return await channel.send(outgoing)
                except SendError as exc:
                    return exc
                except Exception as exc:  # unknown: keep the message and try again later
                    log.exception("unexpected send error")
                    return TransientError(repr(exc)[:500], code="unexpected")

        results = await asyncio.gather(*(send(o, c, lim) for _, o, c, lim in sends))
        sent_at = utcnow()
        fallbacks, opted_out, texted = [], [], []
        for (row, outgoing, _, _), result in zip(sends, results, strict=True):
            outcomes[row.message.id] = self._result_outcome(row, outgoing, result, sent_at)
            if isinstance(result, PermanentError) and row.message.channel == "sms":
                opted_out += [row.client.id] if result.code == TWILIO_UNSUBSCRIBED else []
                fallbacks += [f for f in [_email_fallback(row, sent_at)] if f]
            elif isinstance(result, str) and row.message.channel == "sms" and row.client:
                texted.append(row.client.id)
        with self.engine.begin() as conn:
            outbox.record(conn, outcomes)
            _after_sends(conn, fallbacks, opted_out, texted, sent_at)
        metrics.observe_dispatch((row.message for row in rows), outcomes)
        log.info("dispatched %d messages", len(outcomes),
                 extra={"statuses": dict(Counter(o["status"] for o in outcomes.values()))})

    def _hold_reason(self, row: Row, now: datetime, answers: dict, booked: set) -> str | None:
        message, client = row.message, row.client
        to_client = message.kind != STAFF_ALERT
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
        staff = message.kind == STAFF_ALERT
        language = "en" if staff or not client else client.language  # staff read English
        zone = client.time_zone if client else clinic.time_zone
        appointment = row.appointment
        context = {
            "client_name": client.name if staff else (client.name.split() or [""])[0],
            "clinic_name": clinic.name,
            "clinic_phone": clinic.phone,
            "first_visit": bool(visit and visit.visit_number == 1),
            "window_ends": visit and local_time_label(
                careplan.window_ends_at(visit.occurred_at), zone, language),
            "appointment": appointment and local_time_label(appointment.starts_at, zone, language,
                                                            with_date=True),
            "page_url": client_page_url(self.config, client.id) if not staff else None,
            "answer": None,
            "client_url": f"{self.config.PUBLIC_BASE_URL}/clients/{client.id}",
            "severity": row.escalation and row.escalation.severity,
            "reasons": row.escalation.reasons if row.escalation else [],
            "reply_text": None,
            "renotify_count": 0,
            **message.params,
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
        retry_at = now + outbox.backoff(message.attempts + 1, result.retry_after)
        if row.client and message.kind in careplan.PLAN_KINDS:
            retry_at = careplan.defer_for_quiet_hours(retry_at, row.client.time_zone,
                                                      row.clinic.plan_settings())
        return _outcome(message, "pending", True, next_attempt_at=retry_at,
                        error_code=result.code, error_message=str(result))


def _outcome(message: Message, status: str, attempted: bool = False, **changes) -> dict:
    """A full row of outbox.OUTCOME_KEYS: what is not said is cleared or kept as it was."""
    return {
        "status": status,
        "attempts": message.attempts + attempted,
        "next_attempt_at": message.next_attempt_at,
        "provider_id": None, "error_code": None, "error_message": None, "body": None,
        "sent_at": None,
    } | changes


def _load(session: Session, ids: list[int]) -> list[Row]:
    query = (
        select(Message, Client, Clinic, Visit, Appointment, Escalation)
        .join(Clinic, Message.clinic_id == Clinic.id)
        .join(Client, Message.client_id == Client.id, isouter=True)
        .join(Visit, Message.visit_id == Visit.id, isouter=True)
        .join(Appointment, Message.appointment_id == Appointment.id, isouter=True)
        .join(Escalation, Message.escalation_id == Escalation.id, isouter=True)
        .where(Message.id.in_(ids))
    )
    return [Row(*parts) for parts in session.exec(query).all()]


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
    """An SMS that can never reach the client goes by email, unless the visit emails anyway."""
    client, visit, message = row.client, row.visit, row.message
    if message.kind not in careplan.PLAN_KINDS or not client or not client.email:
        return None
    if visit and "email" in visit.channels:
        return None
    return {
        "clinic_id": message.clinic_id, "client_id": client.id, "visit_id": message.visit_id,
        "appointment_id": message.appointment_id, "kind": message.kind, "channel": "email",
        "recipient": client.email, "due_at": now, "next_attempt_at": now, "status": "pending",
        "attempts": 0, "dedupe_key": f"{message.dedupe_key}:email-fallback", "created_at": now,
    }


def _after_sends(conn, fallbacks: list[dict], opted_out: list[int], texted: list[int],
                 now: datetime) -> None:
    if fallbacks:
        # The dedupe key makes a second fallback for the same message a no-op.
        dialect_insert = {"sqlite": sqlite_insert, "postgresql": pg_insert}[conn.dialect.name]
        conn.execute(dialect_insert(Message.__table__).on_conflict_do_nothing(), fallbacks)
    if opted_out:
        conn.execute(update(Client.__table__)
                     .where(Client.id.in_(opted_out), Client.sms_opted_out_at.is_(None))
                     .values(sms_opted_out_at=now))
    if texted:
        conn.execute(update(Client.__table__).where(Client.id.in_(set(texted)))
                     .values(last_messaged_at=now))
