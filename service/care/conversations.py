"""The clinic's inbox and each client's conversation: what clients sent (texts, web check-ins)
and what went out to them; and a staff member's own text back, queued through the outbox.

What an item means (worse, red flag, question, reschedule, unknown) is worked out in SQL from
what was stored when it arrived (the text's intent, the check-in's answer, pain and red flags),
so the inbox filters and pages in the database however many items a clinic has.
"""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from service.care import audit
from service.care.scope import theirs
from service.domain import careplan
from service.domain.escalation import HIGH_PAIN, MEANINGFUL_RISE
from service.domain.i18n import N_
from service.domain.messages import MessageKind, MessageStatus
from service.domain.paging import clamp, page_count
from service.domain.replies import WORSE, Intent
from service.messaging import outbox
from service.messaging.rendering import Renderer
from service.messaging.sms_segments import segment_count
from service.models import CheckIn, Client, Clinic, InboundMessage, Message, StaffUser

PAGE_SIZE = 25
MAX_REPLY = 640  # four or five texts: a reply, not a letter

WORSE_, RED_FLAG, QUESTION, RESCHEDULE, UNKNOWN = (
    "worse", Intent.RED_FLAG.value, "question", Intent.RESCHEDULE.value, Intent.UNKNOWN.value)
MEANINGS = (WORSE_, RED_FLAG, QUESTION, RESCHEDULE, UNKNOWN)  # what the inbox filters by
MEANING_WORDS = {
    WORSE_: N_("worse"), RED_FLAG: N_("red flag"), QUESTION: N_("question"), RESCHEDULE: N_("reschedule"),
    UNKNOWN: N_("not understood"), Intent.CHECKIN: N_("check-in"), Intent.CONFIRM: N_("confirmed"),
    Intent.OPT_OUT: N_("stopped texts"), Intent.OPT_IN: N_("texts back on"),
    Intent.HELP: N_("asked for help"),
    Intent.REACTION: N_("reaction"),
}
# What went out, as staff read it. Both marked N_: the page that shows them translates them.
MESSAGE_WORDS = {
    careplan.WINDOW_START: N_("24-hour care window"), careplan.HYDRATION: N_("hydration tip"),
    careplan.HEAT: N_("heat tip"), careplan.CHECKIN: N_("How's your back? check-in"),
    careplan.FOLLOWUP: N_("follow-up check-in"), careplan.APPOINTMENT_REMINDER: N_("appointment reminder"),
    careplan.REBOOK_NUDGE: N_("time to book again"),
    MessageKind.OPT_OUT_CONFIRMATION: N_("texts stopped"),
    MessageKind.OPT_IN_CONFIRMATION: N_("texts back on"),
    MessageKind.HELP: N_("help"), MessageKind.CHECKIN_THANKS: N_("thanks for checking in"),
    MessageKind.CONCERN_ADVICE: N_("pause back walking, call us"),
    MessageKind.URGENT_ADVICE: N_("seek urgent care now"),
    MessageKind.APPOINTMENT_CONFIRMED: N_("appointment confirmed"),
    MessageKind.APPOINTMENT_RESCHEDULE: N_("we will call to reschedule"),
    MessageKind.CLARIFY: N_("we did not understand"), MessageKind.PAGE_LINK: N_("new page link"),
    MessageKind.STAFF_REPLY: N_("reply"),
}
_SENT = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)


def _worse():
    """A check-in the escalation rules grade a concern (domain.escalation.assess, its thresholds)."""
    return ((CheckIn.answer == WORSE) | (CheckIn.pain >= HIGH_PAIN)
            | (CheckIn.pain - Client.baseline_pain >= MEANINGFUL_RISE))


def _texts(clinic_id: int):
    """The clinic's clients' texts, with what each means."""
    question = (InboundMessage.intent == Intent.UNKNOWN) & (
        InboundMessage.body.contains("?") | InboundMessage.body.contains("¿"))
    # One uncorrelated set, not a join: check_in.inbound_message_id has no index to join on.
    worse = InboundMessage.id.in_(
        select(CheckIn.inbound_message_id).join(Client, CheckIn.client_id == Client.id)
        .where(Client.clinic_id == clinic_id, CheckIn.source == "sms", _worse()))
    meaning = sa.case(
        (InboundMessage.intent == Intent.RED_FLAG, RED_FLAG),
        (worse, WORSE_),
        (question, QUESTION),
        else_=InboundMessage.intent)
    return (select(sa.literal("sms").label("source"), InboundMessage.id.label("id"),
                   InboundMessage.client_id.label("client_id"),
                   InboundMessage.received_at.label("at"), InboundMessage.read_at.label("read_at"),
                   meaning.label("meaning"))
            .join(Client, InboundMessage.client_id == Client.id)
            .where(InboundMessage.clinic_id == clinic_id, Client.clinic_id == clinic_id))


def _web_checkins(clinic_id: int):
    """Check-ins from the client's page (an SMS check-in is its text, above)."""
    meaning = sa.case((sa.cast(CheckIn.red_flags, sa.String) != "[]", RED_FLAG),
                      (_worse(), WORSE_), else_=Intent.CHECKIN.value)
    return (select(sa.literal("web").label("source"), CheckIn.id, CheckIn.client_id,
                   CheckIn.created_at, CheckIn.read_at, meaning)
            .join(Client, CheckIn.client_id == Client.id)
            .where(CheckIn.source == "web", Client.clinic_id == clinic_id))


@dataclass(frozen=True)
class Item:
    """One thing a client sent: a text (`text` set) or a web check-in (`checkin` set)."""

    source: str  # sms | web
    at: datetime
    read: bool
    meaning: str
    client: Client
    text: InboundMessage | None = None
    checkin: CheckIn | None = None  # a web check-in, or what a text recorded


@dataclass(frozen=True)
class InboxPage:
    items: list[Item]
    unread: int
    page: int
    pages: int


def inbox(session: Session, clinic_id: int, meaning: str | None = None,
          page: int = 1) -> InboxPage:
    """Newest first, PAGE_SIZE a page; `meaning` one of MEANINGS or None for everything."""
    both = sa.union_all(_texts(clinic_id), _web_checkins(clinic_id)).subquery()
    shown = sa.select(both).where(both.c.meaning == meaning) if meaning else sa.select(both)
    total = session.execute(sa.select(sa.func.count()).select_from(shown.subquery())).scalar_one()
    page, pages = clamp(page, total, PAGE_SIZE), page_count(total, PAGE_SIZE)
    rows = session.execute(shown.order_by(both.c.at.desc(), both.c.id.desc())
                        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return InboxPage(_items(session, rows), unread_count(session, clinic_id), page, pages)


def unread_count(session: Session, clinic_id: int) -> int:
    both = sa.union_all(_texts(clinic_id), _web_checkins(clinic_id)).subquery()
    return session.execute(sa.select(sa.func.count()).where(both.c.read_at.is_(None))).scalar_one()


def _items(session: Session, rows) -> list[Item]:
    """The page's rows with their texts, check-ins and clients (a few queries, not one per row)."""
    def by_id(model, ids):
        return {row.id: row for row in session.exec(select(model).where(model.id.in_(ids)))} if ids else {}
    texts = by_id(InboundMessage, {r.id for r in rows if r.source == "sms"})
    web = by_id(CheckIn, {r.id for r in rows if r.source == "web"})
    # A text's own check-in, by the text's id: a separate map, since a text and a web check-in
    # may have the same id.
    of_text = {c.inbound_message_id: c for c in session.exec(
        select(CheckIn).where(CheckIn.inbound_message_id.in_(texts)))} if texts else {}
    clients = by_id(Client, {r.client_id for r in rows})
    return [Item(r.source, r.at, r.read_at is not None, r.meaning, clients[r.client_id],
                 texts.get(r.id) if r.source == "sms" else None,
                 of_text.get(r.id) if r.source == "sms" else web.get(r.id))
            for r in rows]


@dataclass(frozen=True)
class Entry:
    """One line of a conversation: from the client (an Item) or to them (a Message)."""

    at: datetime
    item: Item | None = None
    message: Message | None = None
    staff_name: str | None = None  # who wrote a staff reply

    @property
    def words(self) -> str | None:
        """What went out: its text once sent (or a staff reply's text); None for a message not
        sent yet, which the page names by its kind (MESSAGE_WORDS, in the page's language)."""
        message = self.message
        if message.body and message.status in _SENT:
            return message.body
        if message.kind == MessageKind.STAFF_REPLY:
            return message.params.get("text", "")
        return None


def conversation(session: Session, client: Client, limit: int = 200) -> list[Entry]:
    """Both sides, oldest first: the latest `limit` of each side."""
    texts = session.exec(select(InboundMessage).where(theirs(InboundMessage, client))
                         .order_by(InboundMessage.received_at.desc()).limit(limit)).all()
    checkins = session.exec(select(CheckIn).where(theirs(CheckIn, client))
                            .order_by(CheckIn.created_at.desc()).limit(limit)).all()
    by_text = {c.inbound_message_id: c for c in checkins if c.inbound_message_id}
    messages = session.exec(select(Message).where(theirs(Message, client))
                            .order_by(Message.due_at.desc()).limit(limit)).all()
    staff = dict(session.exec(select(StaffUser.id, StaffUser.name).where(
        StaffUser.id.in_({m.staff_id for m in messages} - {None}))).all()) if messages else {}
    entries = [Entry(t.received_at, Item("sms", t.received_at, t.read_at is not None, t.intent,
                                         client, t, by_text.get(t.id))) for t in texts]
    entries += [Entry(c.created_at, Item("web", c.created_at, c.read_at is not None, "", client,
                                         checkin=c)) for c in checkins if c.source == "web"]
    entries += [Entry(m.sent_at or m.due_at, message=m, staff_name=staff.get(m.staff_id))
                for m in messages]
    return sorted(entries, key=lambda e: e.at)


def mark_read(session: Session, client: Client, staff_id: int, now: datetime) -> int:
    """The client's unread texts and web check-ins, read by this staff member; how many."""
    items = ((InboundMessage, theirs(InboundMessage, client)),
             (CheckIn, theirs(CheckIn, client) & (CheckIn.source == "web")))
    return sum(session.execute(sa.update(model).where(mine, model.read_at.is_(None))
                               .values(read_at=now, read_by_id=staff_id)).rowcount
               for model, mine in items)


# --- a staff member's text back ------------------------------------------------------------------

renderer = Renderer()


def reply_channel(session: Session, clinic: Clinic, client: Client) -> tuple[str, str] | None:
    """(channel, address) a reply goes on: the client's own channel as the plan picks it
    (careplan.channels_for), texts first. Answering needs no prior consent to texts once the
    client has texted us; someone who never agreed and never texted gets it by email. None when
    no channel may reach them (opted out, nothing on file)."""
    texted_us = session.exec(select(InboundMessage.id).where(theirs(InboundMessage, client))).first()
    can_text = bool(client.phone and not client.sms_opted_out_at
                    and (client.sms_consent_at or texted_us))
    can_email = bool(client.email and not client.email_opted_out_at)
    channels = careplan.channels_for(can_text=can_text, can_email=can_email,
                                     choice=client.channel_choice)
    if not channels:
        return None
    return channels[0], client.phone if channels[0] == "sms" else client.email


def reply_problem(text: str) -> tuple[str, dict] | None:
    """Why this text cannot go: words (marked N_, with %(name)s placeholders the page fills in
    after translating them) and their values; None when it can."""
    if not text.strip():
        return N_("Write the reply first."), {}
    if len(text) > MAX_REPLY:
        return N_("Keep it to %(max)s characters (this is %(length)s)."), {"max": MAX_REPLY,
                                                                           "length": len(text)}
    return None


def reply_preview(clinic: Clinic, client: Client, text: str) -> dict:
    """The text as the client will read it by SMS, and what it costs: segments and encoding."""
    body = renderer.render(MessageKind.STAFF_REPLY, "sms", client.language,
                           {"clinic_name": clinic.name, "text": text}).body
    encoding, segments = segment_count(body)
    return {"body": body, "segments": segments, "encoding": encoding}


def send_reply(session: Session, clinic: Clinic, client: Client, staff: StaffUser, text: str,
               channel: tuple[str, str], now: datetime, reply_id: str) -> Message:
    """Queued through the outbox (checked against opt-out again when it goes) and audited."""
    message, new = outbox.add_staff_reply(
        session, clinic_id=clinic.id, client_id=client.id, staff_id=staff.id, text=text.strip(),
        channel=channel[0], recipient=channel[1], now=now, reply_id=reply_id)
    if new:
        session.flush()
        audit.record(session, "staff_replied", clinic_id=clinic.id, client_id=client.id,
                     actor=f"staff:{staff.id}", message_id=message.id, channel=channel[0])
    return message
