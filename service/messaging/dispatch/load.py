"""Loading a claimed batch: each message with what sending it needs, and the facts its send-time
rules need, in a few statements per batch (never one per message)."""

from collections import namedtuple
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, or_
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from service.domain import careplan
from service.domain.messages import MessageStatus
from service.domain.sendtime import (
    CAPPED_CHANNEL,
    CAPPED_KINDS,
    SendTimeFacts,
    counts_toward_cap,
    day_started,
)
from service.models import Appointment, CheckIn, Client, Clinic, Escalation, Message, Visit

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


def claimed_rows(session: Session, ids: list[int]) -> list[Row]:
    """The rows of these ids, due first."""
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


@dataclass(slots=True)
class BatchFacts:
    """What the send-time rules need beyond each row, read once per batch (send_time_state)."""

    answers: dict[int, str] = field(default_factory=dict)  # the latest check-in answer per visit
    booked: set[int] = field(default_factory=set)  # clients who booked after the visit
    # Per clinic with a daily send cap: its routine texts today. The dispatcher adds the ones it
    # sends from the batch as it decides them.
    texted_today: dict[int, int] = field(default_factory=dict)


def send_time_state(session: Session, rows: list[Row], now: datetime) -> BatchFacts:
    """The facts send-time rules need, fetched once per batch: the latest check-in answer per
    visit (follow-ups), the clients who booked after the visit (rebooking nudges) and what the
    capped clinics have texted today."""
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
    return BatchFacts(answers, booked, _texted_today(session, rows, now))


def _texted_today(session: Session, rows: list[Row], now: datetime) -> dict[int, int]:
    """For each clinic of the batch with a daily send cap and a plan text in it: its plan texts
    sent since its midnight, and those in a worker's hands outside this batch (claimed: the
    previous batch is still being sent when this one is claimed). One grouped query, none
    without a capped clinic."""
    capped = {r.clinic.id: r.clinic for r in rows if r.clinic.daily_send_cap is not None
              and counts_toward_cap(r.message.kind, r.message.channel)}
    if not capped:
        return {}
    m = _message
    in_hand = and_(m.c.status == MessageStatus.CLAIMED,
                   m.c.id.not_in([r.message.id for r in rows if r.clinic.id in capped]))
    today = (and_(m.c.clinic_id == clinic.id,
                  or_(m.c.sent_at >= day_started(now, clinic.time_zone), in_hand))
             for clinic in capped.values())
    counted = dict(session.execute(
        core_select(m.c.clinic_id, func.count())
        .where(m.c.kind.in_(CAPPED_KINDS), m.c.channel == CAPPED_CHANNEL, or_(*today))
        .group_by(m.c.clinic_id)).all())
    return {clinic_id: counted.get(clinic_id, 0) for clinic_id in capped}


def send_time_facts(row: Row, now: datetime, batch: BatchFacts) -> SendTimeFacts:
    """What domain/sendtime.py decides a row by, from the row and its batch's send_time_state."""
    message, client, appointment = row.message, row.client, row.appointment
    return SendTimeFacts(
        kind=message.kind, now=now, channel=message.channel,
        visit_at=row.visit and row.visit.occurred_at,
        last_answer=batch.answers.get(message.visit_id),
        appointment_at=appointment and appointment.starts_at,
        appointment_cancelled=bool(appointment and appointment.status == "cancelled"),
        booked_since_visit=message.client_id in batch.booked,
        daily_send_cap=row.clinic.daily_send_cap,
        texted_today=batch.texted_today.get(row.clinic.id, 0),
        has_client=client is not None,
        sms_consent=bool(client and client.sms_consent_at),
        sms_opted_out=bool(client and client.sms_opted_out_at),
        email_opted_out=bool(client and client.email_opted_out_at),
    )
