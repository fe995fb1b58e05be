"""Enrolment: a visit, its client and every planned message are written in one transaction.
Also re-deciding a client's channels when their opt-outs or choice change."""

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Row, bindparam, insert, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from service.care import audit, screening
from service.care.maintenance import plan_settings_for
from service.care.schemas import ClientIn, VisitIn
from service.domain import careplan
from service.domain.messages import REOPENABLE, CancelReason, MessageKind
from service.messaging import outbox
from service.models import Appointment, AuditEvent, Client, Clinic, Message, Visit

# The hot path's statements, built once: building one costs the app about as much CPU as
# running it does.
_VISIT_BY_EXTERNAL_ID = select(Visit).where(Visit.clinic_id == bindparam("clinic_id"),
                                            Visit.external_id == bindparam("external_id"))
_CLIENT_BY_PHONE = select(Client).where(Client.clinic_id == bindparam("clinic_id"),
                                        Client.phone == bindparam("phone"))
_CLIENT_BY_EMAIL = select(Client).where(Client.clinic_id == bindparam("clinic_id"),
                                        Client.email == bindparam("email"))
_ENROLMENT_EVENTS = select(AuditEvent.detail).where(AuditEvent.client_id == bindparam("client_id"),
                                                    AuditEvent.action == "visit_enrolled")
_VISIT_COUNT = select(func.count()).select_from(Visit).where(Visit.client_id == bindparam("client_id"))
_PENDING = (select(Message.id, Message.kind, Appointment.starts_at)
            .join(Appointment, Message.appointment_id == Appointment.id, isouter=True)
            .where(Message.client_id == bindparam("client_id"), Message.status == "pending",
                   Message.visit_id.is_not(None)))
# Core statements on the outbox table: no ORM object is built or has to be kept in step (the
# session holds no Message from this path). Columns an INSERT leaves out (status, attempts,
# priority, params, created_at) get the model's defaults, which SQLModel also declares as column
# defaults.
_outbox = Message.__table__
_INSERT_MESSAGES = insert(_outbox).returning(
    _outbox.c.id, _outbox.c.kind, _outbox.c.channel, _outbox.c.due_at, _outbox.c.status,
    sort_by_parameter_order=True)  # ids in plan order, as the ORM gave them


@dataclass(frozen=True)
class Written:
    """What a new enrolment wrote, as stored (times in UTC), so that the API can answer without
    reading it back."""

    client: Client
    appointment: Appointment | None
    messages: list[Row]  # id, kind, channel, due_at, status of each planned message


class IdempotencyConflict(Exception):
    """The external id was first used with another request: `fields` (dotted names) differ."""

    def __init__(self, visit: Visit, fields: list[str]):
        super().__init__(f"external id {visit.external_id!r} was first used with other values")
        self.visit, self.fields = visit, fields


def find_visit(session: Session, clinic_id: int, external_id: str) -> Visit | None:
    return session.exec(_VISIT_BY_EXTERNAL_ID,
                        params={"clinic_id": clinic_id, "external_id": external_id}).first()


def enrol(session: Session, clinic: Clinic, data: VisitIn, now: datetime,
          actor: str) -> tuple[Visit, Written | None]:
    """Returns (visit, what was written). A retried request with the same external id creates
    nothing: (the earlier visit, None); another request with an external id already used raises
    IdempotencyConflict."""
    if data.external_id and (existing := find_visit(session, clinic.id, data.external_id)):
        return _retried(session, existing, data), None
    try:
        visit, written = _write(session, clinic, data, now, actor)
        session.commit()
    except IntegrityError:
        # A concurrent retry of the same request won the race: return what it wrote.
        session.rollback()
        existing = data.external_id and find_visit(session, clinic.id, data.external_id)
        if not existing:
            raise
        return _retried(session, existing, data), None
    return visit, written


def _retried(session: Session, visit: Visit, data: VisitIn) -> Visit:
    """The visit a retry names, unless the retry is another request: IdempotencyConflict naming
    the fields that differ. The first request is known by the digests its visit_enrolled audit
    event keeps (VisitIn.digests): no migration, no second copy of the client's data, and right
    even after the client's row changed (a later visit renames them, STOP, staff edits), which
    a comparison with the rows would take for a conflict. Without them (the event purged by
    retention, or written before digests were kept) the retry is taken for the same request."""
    first = next((detail["request"] for detail in session.execute(
        _ENROLMENT_EVENTS, {"client_id": visit.client_id}).scalars()
        if detail.get("visit_id") == visit.id and "request" in detail), None)
    if first is None:
        return visit
    given = data.digests()
    if differing := sorted(name for name in given.keys() | first.keys()
                           if given.get(name) != first.get(name)):
        raise IdempotencyConflict(visit, differing)
    return visit


def _write(session: Session, clinic: Clinic, data: VisitIn, now: datetime,
           actor: str) -> tuple[Visit, Written]:
    client = _found_or_new_client(session, clinic, data.client, now)
    known = client.id is not None  # a new client has no visits or messages to look at
    if client.baseline_pain is None and data.pain_before is not None:
        client.baseline_pain = data.pain_before  # before the flush: in the same INSERT or UPDATE
    session.add(client)
    session.flush()
    # In UTC, as the database gives it back: the visit is answered from memory.
    occurred_at = (data.occurred_at or now).astimezone(UTC)
    visit_number = data.visit_number or 1 + (
        session.exec(_VISIT_COUNT, params={"client_id": client.id}).one() if known else 0)
    superseded = _supersede_pending(session, client, occurred_at) if known else []
    visit = Visit(clinic_id=clinic.id, client_id=client.id, external_id=data.external_id,
                  occurred_at=occurred_at, visit_number=visit_number,
                  pain_before=data.pain_before, pain_after=data.pain_after,
                  channels=list(channels_for(client, clinic, data.channels)),
                  contraindications=data.contraindications)
    session.add(visit)
    session.flush()
    if visit.contraindications:  # before the plan: it holds the rebooking nudge
        screening.open_review(session, clinic, client, visit, now, actor)

    appointment = None
    if data.next_appointment:
        appointment = Appointment(clinic_id=clinic.id, client_id=client.id, visit_id=visit.id,
                                  starts_at=data.next_appointment.starts_at.astimezone(UTC))
        session.add(appointment)
        session.flush()

    facts = careplan.VisitFacts(
        occurred_at=occurred_at, visit_number=visit_number, time_zone=client.time_zone,
        channels=tuple(visit.channels), appointment_at=appointment and appointment.starts_at,
        enrolled_at=now,
    )
    settings = plan_settings_for(session, clinic, client)
    if data.rebook_weeks:  # the clinician chose the interval for this visit
        settings = replace(settings, weekly_visits=0, maintenance_weeks=data.rebook_weeks)
    # One multi-row INSERT rather than an ORM object per message (the bulk of enrolment's CPU).
    rows = [{"clinic_id": clinic.id, "client_id": client.id, "visit_id": visit.id,
             "appointment_id": appointment.id if m.kind == careplan.APPOINTMENT_REMINDER else None,
             "kind": m.kind, "channel": m.channel,
             "recipient": client.phone if m.channel == "sms" else client.email,
             "due_at": m.due_at, "next_attempt_at": m.due_at,
             "dedupe_key": f"visit:{visit.id}:{m.kind}:{m.channel}"}
            for m in careplan.plan_visit(facts, settings)]
    # (An INSERT without parameter sets would write one row of defaults.)
    messages = session.execute(_INSERT_MESSAGES, rows).all() if rows else []
    detail = {"visit_id": visit.id, "superseded": superseded}
    if data.external_id:  # what a retry is compared with (_retried)
        detail["request"] = data.digests()
    audit.record(session, "visit_enrolled", clinic_id=clinic.id, client_id=client.id, actor=actor,
                 **detail)
    return visit, Written(client=client, appointment=appointment, messages=messages)


def upsert_client(session: Session, clinic: Clinic, given: ClientIn, now: datetime) -> Client:
    """The clinic's client with this phone (else this email), updated, or a new one, flushed. For
    the CSV import; an enrolment does the same in _write, with the client's baseline pain."""
    client = _found_or_new_client(session, clinic, given, now)
    session.add(client)
    session.flush()
    return client


def _found_or_new_client(session: Session, clinic: Clinic, given: ClientIn, now: datetime) -> Client:
    """The clinic's client with this phone (else this email), or a new one (not yet added to the
    session), updated from what was given."""
    client = None
    if given.phone:
        client = session.exec(_CLIENT_BY_PHONE,
                              params={"clinic_id": clinic.id, "phone": given.phone}).first()
    if client is None and given.email:
        client = session.exec(_CLIENT_BY_EMAIL,
                              params={"clinic_id": clinic.id, "email": given.email}).first()
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
    return client


def _supersede_pending(session: Session, client: Client, new_visit_at: datetime) -> list[int]:
    rows = session.exec(_PENDING, params={"client_id": client.id}).all()
    pending = [careplan.PendingMessage(id=id_, kind=kind, appointment_at=starts_at)
               for id_, kind, starts_at in rows]
    ids = careplan.superseded_by_new_visit(pending, new_visit_at)
    if ids:
        outbox.cancel(session.connection(), ids, CancelReason.SUPERSEDED)
    return ids


def channels_for(client: Client, clinic: Clinic,
                 requested: list[str] | tuple[str, ...] | None = None) -> tuple[str, ...]:
    """careplan.channels_for with this client's facts."""
    return careplan.channels_for(
        can_text=client.can_receive_sms,
        can_email=bool(client.email and not client.email_opted_out_at),
        choice=client.channel_choice, requested=requested, clinic_both=clinic.both_channels)


# A plan message that may still go: pending, or cancelled only for its channel and still ahead.
_LIVE = or_(Message.status == "pending",
            (Message.status == "cancelled") & Message.error_code.in_(REOPENABLE)
            & (Message.next_attempt_at > bindparam("now")))
# Every plan message of the client's visits that have one still to go (with what already went).
_SLOTS = (select(Message.id, Message.visit_id, Message.kind, Message.channel, Message.status,
                 Message.error_code, Message.due_at, Message.appointment_id, Visit.channels,
                 _LIVE.label("live"))
          .join(Visit, Message.visit_id == Visit.id)
          .where(Message.kind.in_(careplan.PLAN_KINDS),
                 Message.visit_id.in_(select(Message.visit_id).where(
                     Message.client_id == bindparam("client_id"),
                     Message.kind.in_(careplan.PLAN_KINDS), _LIVE)))
          .order_by(Message.id))
_GONE = ("claimed", "sent", "delivered", "undelivered")  # on its way or out already


def replan_channels(session: Session, client: Client, now: datetime) -> None:
    """After the client's opt-outs or channel choice changed: each plan message still to come
    goes on the channels the rule now gives (careplan.channels_for). A row on a channel no
    longer used is cancelled ("channel_changed"); a channel now used gets its row back, or a new
    one, at the same due time (at once if that passed while the message waited on the other
    channel). A message that went, or is going, on one channel is never added on another, and
    one that no wanted channel can carry (it failed there) stays where it is. The caller
    commits."""
    clinic = session.get(Clinic, client.clinic_id)
    settings = clinic.plan_settings()
    slots = defaultdict(list)
    for row in session.exec(_SLOTS, params={"client_id": client.id, "now": now}):
        slots[row.visit_id, row.kind].append(row)
    cancel, add = [], []
    for (visit_id, kind), rows in slots.items():
        if not any(r.live for r in rows):
            continue
        # A visit planned on both had both chosen; one channel may be the default rule's pick,
        # which is what re-deciding is for.
        chosen = rows[0].channels if len(rows[0].channels) > 1 else None
        wanted = channels_for(client, clinic, chosen)
        if any(r.status in _GONE for r in rows):
            cancel += [r.id for r in rows if r.status == "pending" and r.channel not in wanted]
            continue
        # The row on each channel (its dedupe key is per channel; a pending one if several), and
        # the wanted channels that can carry the message: no row yet, pending, or reopenable.
        on = {r.channel: r for r in sorted(rows, key=lambda r: r.status == "pending")}
        carriers = [c for c in wanted if c not in on or on[c].status == "pending" or (
            on[c].status == "cancelled" and on[c].error_code in REOPENABLE)]
        if wanted and not carriers:  # it failed on what is wanted: leave it where it is
            continue
        cancel += [r.id for r in rows if r.status == "pending" and r.channel not in carriers]
        due = min(r.due_at for r in rows if r.live)
        at = careplan.defer_for_quiet_hours(max(due, now), client.time_zone, settings)
        add += [{"clinic_id": clinic.id, "client_id": client.id, "visit_id": visit_id,
                 "appointment_id": rows[0].appointment_id, "kind": kind, "channel": channel,
                 "recipient": client.phone if channel == "sms" else client.email,
                 "due_at": due, "next_attempt_at": at, "created_at": now,
                 "dedupe_key": f"visit:{visit_id}:{kind}:{channel}"}
                for channel in carriers if on.get(channel) is None or on[channel].status != "pending"]
    connection = session.connection()
    outbox.cancel(connection, cancel, CancelReason.CHANNEL_CHANGED)
    outbox.add_or_reopen(connection, add)


def revoke_and_resend(session: Session, clinic: Clinic, client: Client, now: datetime,
                      actor: str) -> tuple[str, ...]:
    """Every link sent so far stops working; a new one goes out through the outbox on the
    client's channels (rendered at send time with the current version), outside quiet hours.
    Returns those channels: none when the client cannot be reached. The caller commits."""
    client.link_version += 1
    session.add(client)
    channels = channels_for(client, clinic)
    due = careplan.defer_for_quiet_hours(now, client.time_zone, clinic.plan_settings())
    for channel in channels:
        session.add(Message(
            clinic_id=clinic.id, client_id=client.id, kind=MessageKind.PAGE_LINK, channel=channel,
            recipient=client.phone if channel == "sms" else client.email, due_at=due,
            next_attempt_at=due, priority=0,
            dedupe_key=f"{MessageKind.PAGE_LINK}:{client.id}:{client.link_version}:{channel}",
        ))
    audit.record(session, "link_revoked", clinic_id=clinic.id, client_id=client.id, actor=actor,
                 link_version=client.link_version, sent_by=list(channels))
    return channels
