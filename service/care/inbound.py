"""An inbound SMS: stored once per MessageSid, interpreted, acted on.

Answers to the client go through the outbox like every other message: due at once, ahead of any
queue of reminders, never held by quiet hours, and still checked against opt-out at send time.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from service.care import audit
from service.care.checkins import record_check_in
from service.care.enrolment import replan_channels
from service.care.escalations import escalate
from service.domain import escalation as rules
from service.domain.messages import MessageKind, MessageStatus
from service.domain.replies import Intent, Reply, interpret
from service.messaging import outbox
from service.models import Appointment, Client, Clinic, InboundMessage, Message
from service.ops.metrics import INBOUND_UNROUTED

CLARIFY_AT_MOST_EVERY = timedelta(hours=24)  # one clarifying reply, not a conversation with a bot


@dataclass
class Conversation:
    session: Session
    clinic: Clinic
    client: Client
    inbound: InboundMessage
    reply: Reply
    now: datetime
    appointment: Appointment | None  # the reminded appointment a "yes"/"C"/"R" is about
    sender_clinics: list[int]  # the clinics whose sender received it: what a STOP stops

    def answer(self, kind: str, **params) -> None:
        """In the language the client wrote in when it is clear (see replies.Reply)."""
        params = {"language": self.reply.answer_language(self.client.language), **params}
        self.session.add(Message(
            clinic_id=self.clinic.id, client_id=self.client.id, kind=kind, channel="sms",
            recipient=self.client.phone, due_at=self.now, next_attempt_at=self.now, priority=0,
            appointment_id=self.appointment and self.appointment.id, params=params,
            dedupe_key=f"reply:{self.inbound.id}:{kind}",
        ))

    def log(self, action: str, **detail) -> None:
        audit.record(self.session, action, clinic_id=self.clinic.id, client_id=self.client.id,
                     actor="client", inbound_id=self.inbound.id, **detail)


def receive(session: Session, sid: str, from_number: str, to_number: str, body: str,
            now: datetime, service_sid: str | None = None,
            default_senders: frozenset[str] = frozenset()) -> InboundMessage | None:
    """Returns None when this MessageSid was handled already (Twilio retries webhooks). The
    text belongs to the clinic whose sender received it (`to_number`, or the Messaging Service
    `service_sid`), and to its client with that phone; one to no clinic's sender is stored
    without a clinic and counted."""
    if session.exec(select(InboundMessage).where(InboundMessage.provider_sid == sid)).first():
        return None
    owner, clinic_ids = sender_clinics(session, to_number, service_sid, default_senders)
    if not clinic_ids:
        INBOUND_UNROUTED.labels("inbound_sms").inc()
    client = client_for_number(session, from_number, clinic_ids)
    appointment = client and reminded_appointment(session, client, now)
    reply = interpret(body, reminder_open=appointment is not None)
    inbound = InboundMessage(provider_sid=sid, clinic_id=client.clinic_id if client else owner,
                             client_id=client and client.id, from_number=from_number,
                             to_number=to_number, body=body, intent=reply.intent,
                             language=reply.language if reply.language_clear else None,
                             received_at=now)
    session.add(inbound)
    session.flush()
    audit.record(session, "inbound_interpreted", clinic_id=inbound.clinic_id,
                 client_id=inbound.client_id, actor="client", inbound_id=inbound.id,
                 intent=reply.intent, answer=reply.answer, pain=reply.pain,
                 red_flags=list(reply.red_flags))
    if client is not None:
        clinic = session.get(Clinic, client.clinic_id)
        conversation = Conversation(session, clinic, client, inbound, reply, now, appointment,
                                    clinic_ids)
        ACTIONS[reply.intent](conversation)
    return inbound


def sender_clinics(session: Session, to_number: str, service_sid: str | None,
                   default_senders: frozenset[str]) -> tuple[int | None, list[int]]:
    """(the clinic that owns the receiving sender or None, the clinics a text to it may be
    for): the owner alone; for the installation's default sender (any other, when none is set),
    the clinics without their own (one, unless `doctor` fails); for any other, none."""
    received_by = [sender for sender in (to_number, service_sid) if sender]
    owner = session.exec(select(Clinic.id).where(Clinic.sms_sender.in_(received_by))).first()
    if owner is not None:
        return owner, [owner]
    if default_senders and default_senders.isdisjoint(received_by):
        return None, []
    return None, list(session.exec(select(Clinic.id).where(Clinic.sms_sender.is_(None))))


def client_for_number(session: Session, phone: str, clinic_ids: list[int]) -> Client | None:
    """The phone's client at these clinics; at several clinics sharing the default sender, the
    one that texted it last."""
    return session.exec(
        select(Client).where(Client.phone == phone, Client.clinic_id.in_(clinic_ids))
        .order_by(Client.last_messaged_at.desc().nulls_last(), Client.id.desc())
    ).first()


def reminded_appointment(session: Session, client: Client, now: datetime) -> Appointment | None:
    """The next appointment whose reminder went out: what "yes", "C" or "R" answers."""
    return session.exec(
        select(Appointment)
        .join(Message, Message.appointment_id == Appointment.id)
        .where(Appointment.client_id == client.id, Appointment.starts_at > now,
               Appointment.status != "cancelled", Message.kind == MessageKind.APPOINTMENT_REMINDER,
               Message.status.in_((MessageStatus.SENT, MessageStatus.DELIVERED)))
        .order_by(Appointment.starts_at)
    ).first()


def _same_number(c: Conversation) -> list[Client]:
    """The number's clients at the clinics of the sender that received the text."""
    return c.session.exec(select(Client).where(Client.phone == c.client.phone,
                                               Client.clinic_id.in_(c.sender_clinics))).all()


def _log_each(c: Conversation, action: str, clients: list[Client]) -> None:
    """In the audit log of each client's own clinic."""
    for client in clients:
        audit.record(c.session, action, clinic_id=client.clinic_id, client_id=client.id,
                     actor="client", inbound_id=c.inbound.id)


def opt_out(c: Conversation) -> None:
    """The number is opted out of the sender that received the STOP, as carriers apply it:
    never texted again from it until START; another clinic's sender still texts it."""
    clients = _same_number(c)
    newly = [client for client in clients if not client.sms_opted_out_at]
    for client in newly:
        client.sms_opted_out_at = c.now
        c.session.add(client)
    outbox.cancel_texts_to(c.session, c.client.phone, c.sender_clinics)
    for client in newly:  # the aftercare still to come goes by email where they have one
        replan_channels(c.session, client, c.now)
    _log_each(c, "opted_out", clients)
    if newly:
        c.answer(MessageKind.OPT_OUT_CONFIRMATION)  # once: a second STOP is not confirmed again
    if c.reply.red_flags:  # they still need the clinic, even if they want no more texts
        assessment = rules.assess(c.reply.answer, c.reply.pain, c.reply.red_flags,
                                  c.client.baseline_pain)
        escalate(c.session, c.clinic, c.client, assessment, c.now, reply_text=c.inbound.body)


def opt_in(c: Conversation) -> None:
    clients = [client for client in _same_number(c) if client.sms_opted_out_at]
    if not clients:
        return clarify(c)
    for client in clients:
        client.sms_opted_out_at = None
        client.sms_opted_in_at = c.now
        c.session.add(client)
    outbox.reopen_texts_to(c.session, c.client.phone, c.sender_clinics, c.now)
    for client in clients:  # back to texts: the email copies planned meanwhile are dropped
        replan_channels(c.session, client, c.now)
    _log_each(c, "opted_in", clients)
    c.answer(MessageKind.OPT_IN_CONFIRMATION)


def help_(c: Conversation) -> None:
    c.answer(MessageKind.HELP)


def check_in(c: Conversation) -> None:
    """A check-in or a red flag: recorded, assessed, answered kindly. A concern whose alert waits
    for the clinic's quiet hours says when the team will see it, not that it has been told."""
    result = record_check_in(c.session, c.clinic, c.client, answer=c.reply.answer,
                             pain=c.reply.pain, red_flags=c.reply.red_flags, source="sms",
                             now=c.now, inbound_id=c.inbound.id, reply_text=c.inbound.body)
    advice = {rules.URGENT: MessageKind.URGENT_ADVICE, rules.CONCERN: MessageKind.CONCERN_ADVICE}
    params = {"answer": c.reply.answer}
    if result.team_sees_at is not None:
        params["team_sees_at"] = result.team_sees_at.isoformat()
    c.answer(advice.get(result.assessment.severity, MessageKind.CHECKIN_THANKS), **params)


def _appointment_answer(status: str, kind: str) -> Callable[[Conversation], None]:
    def act(c: Conversation) -> None:
        if c.appointment is None:
            return clarify(c)
        c.appointment.status = status
        c.appointment.updated_at = c.now
        c.session.add(c.appointment)
        c.log(f"appointment_{status}", appointment_id=c.appointment.id)
        c.answer(kind)

    return act


def keep(c: Conversation) -> None:
    """A phone's reaction to one of our texts: kept for the inbox (stored above), nothing else."""


def clarify(c: Conversation) -> None:
    """Kept for the clinic's inbox; the client gets one clarifying reply a day at most."""
    recent = c.session.exec(
        select(Message).where(Message.client_id == c.client.id, Message.kind == MessageKind.CLARIFY,
                              Message.created_at > c.now - CLARIFY_AT_MOST_EVERY)
    ).first()
    if recent is None:
        c.answer(MessageKind.CLARIFY)


ACTIONS: dict[Intent, Callable[[Conversation], None]] = {
    Intent.OPT_OUT: opt_out,
    Intent.OPT_IN: opt_in,
    Intent.HELP: help_,
    Intent.CHECKIN: check_in,
    Intent.RED_FLAG: check_in,
    Intent.CONFIRM: _appointment_answer("confirmed", MessageKind.APPOINTMENT_CONFIRMED),
    Intent.RESCHEDULE: _appointment_answer("reschedule_requested", MessageKind.APPOINTMENT_RESCHEDULE),
    Intent.REACTION: keep,
    Intent.UNKNOWN: clarify,
}
