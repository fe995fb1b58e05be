"""Loading a claimed batch: each message with what sending it needs, and the facts its send-time
rules need, in a few statements per batch (never one per message)."""

from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select as core_select
from sqlmodel import Session, select

from service.domain import careplan
from service.domain.sendtime import SendTimeFacts
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


def send_time_state(session: Session, rows: list[Row]) -> tuple[dict[int, str], set[int]]:
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


def send_time_facts(row: Row, now: datetime, answers: dict[int, str],
                    booked: set[int]) -> SendTimeFacts:
    """What domain/sendtime.py decides a row by, from the row and its batch's send_time_state."""
    message, client, appointment = row.message, row.client, row.appointment
    return SendTimeFacts(
        kind=message.kind, now=now, channel=message.channel,
        visit_at=row.visit and row.visit.occurred_at,
        last_answer=answers.get(message.visit_id),
        appointment_at=appointment and appointment.starts_at,
        appointment_cancelled=bool(appointment and appointment.status == "cancelled"),
        booked_since_visit=message.client_id in booked,
        has_client=client is not None,
        sms_consent=bool(client and client.sms_consent_at),
        sms_opted_out=bool(client and client.sms_opted_out_at),
        email_opted_out=bool(client and client.email_opted_out_at),
    )
