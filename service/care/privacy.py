"""One client's personal data: everything about them as JSON (a subject access request), and its
erasure. The CLI (`export-client`, `erase-client`) and the staff web UI call these.

Erasure removes what identifies the person: name, phone, email, the texts they sent and the texts
we sent them, staff notes, the booking system's ids, the details of their audit events, their
contraindication reviews (deleted). The rows themselves stay, anonymous (a visit, a pain score, an
escalation's rule), so a clinic's counts and the metrics stay right. What was still to be sent is
cancelled, and the client's page link stops working (a neutral page that names no one and accepts
nothing).

Both touch only the client's clinic's rows: the same phone may be another clinic's client too,
whose texts and records are that clinic's, never this one's to read or wipe.
"""

from datetime import datetime

from sqlalchemy import delete, or_, update
from sqlmodel import Session, SQLModel, select

from service.care import audit
from service.care.scope import belongs, theirs
from service.domain.messages import MessageKind, MessageStatus
from service.messaging import outbox
from service.models import (
    Appointment,
    AuditEvent,
    CheckIn,
    Client,
    Clinic,
    Escalation,
    InboundMessage,
    Message,
    ScreeningReview,
    Visit,
)

ERASED = "[erased]"


class ClientBusy(Exception):
    """A message to the client is being sent right now: its outcome would write the body back."""


def is_erased(client: Client) -> bool:
    """Their page link then shows a neutral page and accepts nothing."""
    return client.name == ERASED


def export_client(session: Session, client: Client, now: datetime) -> dict:
    """Everything stored about the client. Alerts to staff are left out: they hold staff numbers,
    and what they said about the client is in its escalations."""

    def rows(model: type[SQLModel], *where) -> list[dict]:
        query = select(model).where(theirs(model, client), *where).order_by(model.id)
        return [row.model_dump(mode="json") for row in session.exec(query)]

    return {
        "exported_at": now.isoformat(),
        "clinic": session.get(Clinic, client.clinic_id).name,
        "client": client.model_dump(mode="json"),
        "visits": rows(Visit),
        "appointments": rows(Appointment),
        "messages": rows(Message, Message.kind != MessageKind.STAFF_ALERT),
        "inbound_messages": [row.model_dump(mode="json") for row in session.exec(
            select(InboundMessage).where(_their_texts(client)).order_by(InboundMessage.id))],
        "check_ins": rows(CheckIn),
        "escalations": rows(Escalation),
        "screening_reviews": rows(ScreeningReview),
        "audit_events": rows(AuditEvent),
    }


def _their_texts(client: Client):
    """The texts the client sent this clinic: linked to them, or from their number (one the
    clinic received before it knew whose it was). Another clinic's texts from the same number
    are not among them."""
    sent_by = [InboundMessage.client_id == client.id]
    if client.phone:
        sent_by.append(InboundMessage.from_number == client.phone)
    return belongs(InboundMessage, client.clinic_id) & or_(*sent_by)


def erase_client(session: Session, client: Client, now: datetime, actor: str) -> None:
    """Erases in the session; the caller commits. Raises ClientBusy while a message to the client
    is in flight (try again a minute later)."""
    if session.exec(select(Message.id).where(theirs(Message, client),
                                             Message.status == MessageStatus.CLAIMED)).first():
        raise ClientBusy(f"a message to client {client.id} is being sent right now")
    outbox.cancel_erased(session, client.id)
    # Provider errors quote the number, alerts quote the client's reply: all of it goes.
    session.execute(update(Message).where(theirs(Message, client))
                    .values(recipient=ERASED, body=None, params={}, error_message=None))
    session.execute(update(InboundMessage).where(_their_texts(client))
                    .values(from_number=ERASED, body=""))
    session.execute(update(Visit).where(theirs(Visit, client)).values(external_id=None))
    session.execute(update(Escalation).where(theirs(Escalation, client))
                    .values(ack_note=None))
    # A review's notes and reasons are about the person's health, and nothing counts them.
    session.execute(delete(ScreeningReview).where(theirs(ScreeningReview, client)))
    client.name, client.phone, client.email = ERASED, None, None
    client.link_version += 1  # every link sent to them stops working
    session.add(client)
    # Their audit rows stay, chained: only their detail goes, listed in the client_erased row.
    audit.redact(session, client.id, client.clinic_id, actor)
