"""A clinic's clients as staff find and keep them: the list with its search, filters and paging,
and a change to a client's details (with what it means for the messages still to go).

A search reads one page in one statement (last visit, next appointment and an open escalation are
correlated subqueries on indexed client_id columns) plus one count, whatever the page holds."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, or_, select
from sqlmodel import Session

from service.care import audit
from service.care.enrolment import replan_channels
from service.care.schemas import ClientIn, e164
from service.care.scope import belongs
from service.domain.paging import clamp, page_count
from service.messaging import outbox, phones
from service.models import Appointment, Client, Clinic, Escalation, Visit

PAGE_SIZE = 25
BOOKED = ("booked", "confirmed")  # an appointment the client will come to
CHANNEL_CHOICES = ("sms", "email", "both")  # a client's own choice; None: the default rule
# Whose values the audit keeps: a name, number or address is personal data, so a change to one
# is recorded by its field's name only.
PERSONAL = frozenset({"name", "phone", "email"})


@dataclass(frozen=True)
class Filters:
    escalated: bool = False  # an open escalation
    opted_out: bool = False  # texts or email stopped
    unbooked: bool = False  # no booked appointment ahead


@dataclass(frozen=True)
class Row:
    client: Client
    last_visit: datetime | None
    next_appointment: datetime | None
    escalated: bool


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    total: int
    number: int
    kind: str | None  # what the query was read as: "name", "phone", "email", or None (no query)

    @property
    def pages(self) -> int:
        return page_count(self.total, PAGE_SIZE)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"


def matching(q: str, region: str) -> tuple[str | None, object]:
    """What a search box's text means, and its condition. An address with "@" is an email; text
    that reads as a phone number in the clinic's region ("(202) 555-0123", "+12025550123",
    "2025550123") is that number in E.164, as stored; other digits are part of a number; anything
    else is part of a name."""
    if not q:
        return None, True
    if "@" in q:
        return "email", Client.email.ilike(_like(q), escape="\\")
    if not any(ch.isalpha() for ch in q):
        try:
            return "phone", Client.phone == e164(q, region)
        except ValueError:
            digits = "".join(ch for ch in q if ch.isdigit())
            if len(digits) >= 3:
                return "phone", Client.phone.like(_like(digits), escape="\\")
    return "name", Client.name.ilike(_like(q), escape="\\")


def search(session: Session, clinic: Clinic, q: str, filters: Filters, number: int,
           now: datetime) -> Page:
    """One page of the clinic's clients matching the query and filters, by name."""
    kind, condition = matching(q.strip(), phones.region_of(clinic.phone))
    booked_ahead = (select(Appointment.id).where(
        Appointment.client_id == Client.id, Appointment.status.in_(BOOKED),
        Appointment.starts_at > now)).exists()
    escalated = exists().where(Escalation.client_id == Client.id, Escalation.status == "open")
    where = [belongs(Client, clinic.id), condition]
    if filters.escalated:
        where.append(escalated)
    if filters.opted_out:
        where.append(or_(Client.sms_opted_out_at.is_not(None),
                         Client.email_opted_out_at.is_not(None)))
    if filters.unbooked:
        where.append(~booked_ahead)
    total = session.execute(select(func.count()).select_from(Client).where(*where)).scalar_one()
    number = clamp(number, total, PAGE_SIZE)
    last_visit = (select(func.max(Visit.occurred_at)).where(Visit.client_id == Client.id)
                  .scalar_subquery())
    next_appointment = (select(func.min(Appointment.starts_at)).where(
        Appointment.client_id == Client.id, Appointment.status.in_(BOOKED),
        Appointment.starts_at > now).scalar_subquery())
    rows = session.execute(
        select(Client, last_visit, next_appointment, escalated).where(*where)
        .order_by(Client.name, Client.id).offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ).all()
    return Page(rows=[Row(*row) for row in rows], total=total, number=number, kind=kind)


class DetailsError(Exception):
    """A change that the data allows but the clinic's clients do not (keyed like field errors)."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


def change_details(session: Session, client: Client, given: ClientIn, channel_choice: str | None,
                   now: datetime, actor: str) -> list[str]:
    """Staff correct a client's details (validated by ClientIn, as at enrolment). Messages still
    to go follow: those on the old number or address go to the new one (outbox.readdress), and
    the plan's channels are decided again when the ways to reach the client changed. Audited
    with the fields changed (values only for what is not personal data). Returns those fields;
    the caller commits."""
    if given.phone and given.phone != client.phone and session.execute(
            select(Client.id).where(belongs(Client, client.clinic_id), Client.phone == given.phone,
                                    Client.id != client.id)).first():
        raise DetailsError({"phone": "another client of this clinic has this number"})
    new = {"name": given.name, "phone": given.phone, "email": given.email,
           "language": given.language, "time_zone": given.time_zone or client.time_zone,
           "channel_choice": channel_choice}
    changed = [field for field, value in new.items() if getattr(client, field) != value]
    consented = given.sms_consent and not client.sms_consent_at
    if not changed and not consented:
        return []
    for field, address in (("phone", "sms"), ("email", "email")):
        old = getattr(client, field)
        if field in changed and old:
            outbox.readdress(session, client.id, address, old, new[field])
    for field in changed:
        setattr(client, field, new[field])
    if consented:
        client.sms_consent_at = now
        changed.append("sms_consent")
    session.add(client)
    session.flush()
    if {"phone", "email", "channel_choice", "sms_consent"} & set(changed):
        replan_channels(session, client, now)
    audit.record(session, "client_details_changed", clinic_id=client.clinic_id,
                 client_id=client.id, actor=actor, fields=changed,
                 **{field: new[field] for field in changed if field in new and field not in PERSONAL})
    return changed
