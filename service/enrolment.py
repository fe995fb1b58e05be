"""Enrolment: a visit, its client and every planned message are written in one transaction."""

from dataclasses import replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select, update

from service.domain import careplan
from service.maintenance import plan_settings_for
from service.models import Appointment, AuditEvent, Client, Clinic, Message, Visit
from service.schemas import ClientIn, VisitIn


def find_visit(session: Session, clinic_id: int, external_id: str) -> Visit | None:
    return session.exec(
        select(Visit).where(Visit.clinic_id == clinic_id, Visit.external_id == external_id)
    ).first()


def enrol(session: Session, clinic: Clinic, data: VisitIn, now: datetime, actor: str) -> tuple[Visit, bool]:
    """Returns (visit, created). A retried request with the same external id creates nothing."""
    if data.external_id and (existing := find_visit(session, clinic.id, data.external_id)):
        return existing, False
    try:
        visit = _write(session, clinic, data, now, actor)
        session.commit()
    except IntegrityError:
        # A concurrent retry of the same request won the race: return what it wrote.
        session.rollback()
        existing = data.external_id and find_visit(session, clinic.id, data.external_id)
        if not existing:
            raise
        return existing, False
    return visit, True


def _write(session: Session, clinic: Clinic, data: VisitIn, now: datetime, actor: str) -> Visit:
    client = upsert_client(session, clinic, data.client, now)
    occurred_at = data.occurred_at or now
    visit_number = data.visit_number or 1 + session.exec(
        select(func.count()).select_from(Visit).where(Visit.client_id == client.id)
    ).one()
    if client.baseline_pain is None and data.pain_before is not None:
        client.baseline_pain = data.pain_before

    superseded = _supersede_pending(session, client, occurred_at)
    visit = Visit(clinic_id=clinic.id, client_id=client.id, external_id=data.external_id,
                  occurred_at=occurred_at, visit_number=visit_number,
                  pain_before=data.pain_before, pain_after=data.pain_after,
                  channels=list(data.resolved_channels()))
    session.add(visit)
    session.flush()

    appointment = None
    if data.next_appointment:
        appointment = Appointment(clinic_id=clinic.id, client_id=client.id, visit_id=visit.id,
                                  starts_at=data.next_appointment.starts_at)
        session.add(appointment)
        session.flush()

    facts = careplan.VisitFacts(
        occurred_at=occurred_at, visit_number=visit_number, time_zone=client.time_zone,
        channels=tuple(visit.channels), appointment_at=appointment and appointment.starts_at,
    )
    settings = plan_settings_for(session, clinic, client)
    if data.rebook_weeks:  # the clinician chose the interval for this visit
        settings = replace(settings, weekly_visits=0, maintenance_weeks=data.rebook_weeks)
    for planned in careplan.plan_visit(facts, settings):
        session.add(Message(
            clinic_id=clinic.id, client_id=client.id, visit_id=visit.id,
            appointment_id=appointment.id if planned.kind == careplan.APPOINTMENT_REMINDER else None,
            kind=planned.kind, channel=planned.channel,
            recipient=client.phone if planned.channel == "sms" else client.email,
            due_at=planned.due_at, next_attempt_at=planned.due_at,
            dedupe_key=f"visit:{visit.id}:{planned.kind}:{planned.channel}",
        ))
    session.add(AuditEvent(clinic_id=clinic.id, client_id=client.id, actor=actor,
                           action="visit_enrolled",
                           detail={"visit_id": visit.id, "superseded": superseded}))
    return visit


def upsert_client(session: Session, clinic: Clinic, given: ClientIn, now: datetime) -> Client:
    """The clinic's client with this phone (else this email), updated, or a new one. Also used by
    the CSV import."""
    client = None
    if given.phone:
        client = session.exec(
            select(Client).where(Client.clinic_id == clinic.id, Client.phone == given.phone)
        ).first()
    if client is None and given.email:
        client = session.exec(
            select(Client).where(Client.clinic_id == clinic.id, Client.email == given.email)
        ).first()
    if client is None:
        client = Client(clinic_id=clinic.id, name=given.name,
                        time_zone=given.time_zone or clinic.time_zone)
    client.name = given.name
    client.language = given.language
    client.phone = given.phone or client.phone
    client.email = given.email or client.email
    client.time_zone = given.time_zone or client.time_zone
    if given.sms_consent and not client.sms_consent_at:
        client.sms_consent_at = now
    session.add(client)
    session.flush()
    return client


def _supersede_pending(session: Session, client: Client, new_visit_at: datetime) -> list[int]:
    rows = session.exec(
        select(Message, Appointment.starts_at)
        .join(Appointment, Message.appointment_id == Appointment.id, isouter=True)
        .where(Message.client_id == client.id, Message.status == "pending",
               Message.visit_id.is_not(None))
    ).all()
    pending = [careplan.PendingMessage(id=m.id, kind=m.kind, appointment_at=starts_at)
               for m, starts_at in rows]
    ids = careplan.superseded_by_new_visit(pending, new_visit_at)
    if ids:
        session.execute(
            update(Message).where(Message.id.in_(ids), Message.status == "pending")
            .values(status="cancelled", error_code="superseded")
        )
    return ids
