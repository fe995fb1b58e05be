"""Escalations: one open per client, alerts to the on-call staff through the outbox, re-sent until
someone acknowledges. The rules themselves are pure, in domain/escalation.py."""

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from service.care import audit
from service.domain import escalation as rules
from service.domain.careplan import defer_for_quiet_hours
from service.domain.messages import MessageKind
from service.messaging import outbox
from service.models import Client, Clinic, Escalation, Message, utcnow


def open_escalation(session: Session, client_id: int) -> Escalation | None:
    return session.exec(select(Escalation).where(Escalation.client_id == client_id,
                                                 Escalation.status == "open")).first()


def _fact(row: Escalation) -> rules.OpenEscalation:
    return rules.OpenEscalation(severity=row.severity, opened_at=row.opened_at,
                                last_notified_at=row.last_notified_at, notify_count=row.notify_count)


def escalate(session: Session, clinic: Clinic, client: Client, assessment: rules.Assessment,
             now: datetime, reply_text: str | None = None) -> Escalation | None:
    """Opens, adds to or upgrades the client's escalation; pages on-call when the rules say so."""
    row = open_escalation(session, client.id)
    decision = rules.on_assessment(row and _fact(row), assessment)
    if decision is None:
        return None
    if decision.open_new:
        row = Escalation(clinic_id=clinic.id, client_id=client.id, severity=assessment.severity,
                         reasons=list(decision.reasons), opened_at=now)
        session.add(row)
        session.flush()
        event = "opened"
    else:
        row.reasons = row.reasons + [r for r in decision.reasons if r not in row.reasons]
        if decision.upgrade:
            row.severity = rules.URGENT
        event = "upgraded" if decision.upgrade else "added_to"
    audit.record(session, f"escalation_{event}", clinic_id=clinic.id, client_id=client.id,
                 escalation_id=row.id, severity=row.severity, reasons=list(decision.reasons))
    if decision.page_now:
        _page(session, clinic, row, now, event, reply_text=reply_text)
    session.add(row)
    return row


def _page(session: Session, clinic: Clinic, row: Escalation, now: datetime, event: str,
          **params) -> None:
    """Queue an alert to every on-call contact. Urgent ones go at once, whatever the hour;
    concern alerts respect the clinic's quiet hours."""
    due = now
    if row.severity != rules.URGENT:
        due = defer_for_quiet_hours(now, clinic.time_zone, clinic.plan_settings())
    row.last_notified_at = due
    recipients = [("sms", phone) for phone in clinic.on_call_phones]
    recipients += [("email", email) for email in clinic.on_call_emails]
    for channel, recipient in recipients:
        session.add(Message(
            clinic_id=clinic.id, client_id=row.client_id, escalation_id=row.id, kind=MessageKind.STAFF_ALERT,
            channel=channel, recipient=recipient, due_at=due, next_attempt_at=due, priority=0,
            params={"renotify_count": row.notify_count, **params},
            dedupe_key=f"escalation:{row.id}:{event}:{channel}:{recipient}",
        ))
    audit.record(session, "escalation_paged", clinic_id=clinic.id, client_id=row.client_id,
                 escalation_id=row.id, event=event, recipients=len(recipients), due_at=due.isoformat())


def renotify(engine: Engine) -> int:
    """The worker's tick: re-send unacknowledged escalations whose interval has passed."""
    now = utcnow()
    paged = 0
    with Session(engine, expire_on_commit=False) as session:
        rows = session.exec(
            select(Escalation, Clinic).join(Clinic, Escalation.clinic_id == Clinic.id)
            .where(Escalation.status == "open", Escalation.notify_count < Clinic.renotify_max)
            .with_for_update(skip_locked=True, of=Escalation)
        ).all()
        for row, clinic in rows:
            interval = timedelta(minutes=clinic.renotify_minutes)
            if rules.renotification_due(_fact(row), now, interval, clinic.renotify_max):
                row.notify_count += 1
                _page(session, clinic, row, now, f"renotify{row.notify_count}")
                session.add(row)
                paged += 1
        session.commit()
    return paged


def acknowledge(session: Session, row: Escalation, now: datetime, actor: str,
                staff_id: int | None = None, note: str | None = None) -> None:
    """Stops the re-notifications, and cancels alerts still waiting for the end of quiet hours."""
    row.status = "acknowledged"
    row.acknowledged_at = now
    row.acknowledged_by_id = staff_id
    row.ack_note = note
    session.add(row)
    outbox.cancel_alerts(session, row.id)
    audit.record(session, "escalation_acknowledged", clinic_id=row.clinic_id,
                 client_id=row.client_id, actor=actor, escalation_id=row.id, note=note)
