"""What the dashboard shows a clinic: its open escalations counted, most urgent first, a page at a
time, and the day's visits, replies (texts and web check-ins) and failed deliveries. A few
statements however many escalations are open, so that the first screen stays the same at 1,000.
Every query is the clinic's own (scope.belongs)."""

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func
from sqlmodel import Session, select

from service.care.scope import belongs
from service.domain.escalation import CONCERN, URGENT
from service.domain.messages import MessageStatus
from service.domain.paging import clamp, page_count
from service.models import CheckIn, Client, Clinic, Escalation, InboundMessage, Message, Visit

PER_PAGE = 20
LISTED = 10  # of each section below the escalations; its count says how many there are
SHOWS = (URGENT, CONCERN, "unanswered")  # what the counts at the top filter the list by
FAILED_DAYS = 7
FAILED = (MessageStatus.FAILED, MessageStatus.UNDELIVERED)


@dataclass(frozen=True)
class Counts:
    urgent: int
    concern: int
    unanswered: int


@dataclass(frozen=True)
class Section:
    count: int
    rows: list  # the newest LISTED of them (all of today's visits up to LISTED)


@dataclass(frozen=True)
class Board:
    counts: Counts
    escalations: list  # (Escalation, Client), this page's
    page: int
    pages: int
    visits: Section
    replies: Section  # (when, Client, InboundMessage | CheckIn), newest first
    failed: Section


def board(session: Session, clinic: Clinic, now: datetime, show: str | None = None,
          page: int = 1) -> Board:
    counts = _counts(session, clinic)
    matching = {None: counts.urgent + counts.concern, URGENT: counts.urgent,
                CONCERN: counts.concern, "unanswered": counts.unanswered}[show]
    today = datetime.combine(now.astimezone(ZoneInfo(clinic.time_zone)).date(), time(),
                             ZoneInfo(clinic.time_zone))
    page = clamp(page, matching, PER_PAGE)
    return Board(counts=counts, escalations=_page(session, clinic, show, page), page=page,
                 pages=page_count(matching, PER_PAGE),
                 visits=_visits(session, clinic, today), replies=_replies(session, clinic, today),
                 failed=_failed(session, clinic, now - timedelta(days=FAILED_DAYS)))


def _unanswered(clinic: Clinic):
    """domain.escalation.unanswered as SQL (every re-notification sent), for counting and
    ordering in the database; tests/test_dashboard.py holds the two to the same answer."""
    return Escalation.notify_count >= clinic.renotify_max


def _open(clinic: Clinic):
    return belongs(Escalation, clinic.id), Escalation.status == "open"


def _counts(session: Session, clinic: Clinic) -> Counts:
    def number(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)
    row = session.exec(select(number(Escalation.severity == URGENT),
                              number(Escalation.severity == CONCERN),
                              number(_unanswered(clinic))).where(*_open(clinic))).one()
    return Counts(*row)


def _page(session: Session, clinic: Clinic, show: str | None, page: int) -> list:
    """Urgent before concern, then unanswered, then the longest waiting."""
    query = (select(Escalation, Client).join(Client, Escalation.client_id == Client.id)
             .where(*_open(clinic)))
    if show == "unanswered":
        query = query.where(_unanswered(clinic))
    elif show is not None:
        query = query.where(Escalation.severity == show)
    query = query.order_by(case((Escalation.severity == URGENT, 0), else_=1),
                           case((_unanswered(clinic), 0), else_=1),
                           Escalation.opened_at, Escalation.id)
    return list(session.exec(query.offset((page - 1) * PER_PAGE).limit(PER_PAGE)).all())


def _count(session: Session, query) -> int:
    """How many rows the section's query finds: the very query it lists, so the two agree."""
    return session.exec(select(func.count()).select_from(query.order_by(None).subquery())).one()


def _section(session: Session, query) -> Section:
    return Section(_count(session, query), list(session.exec(query.limit(LISTED)).all()))


def _visits(session: Session, clinic: Clinic, today: datetime) -> Section:
    return _section(session, select(Visit, Client).join(Client, Visit.client_id == Client.id)
                    .where(belongs(Visit, clinic.id), Visit.occurred_at >= today,
                           Visit.occurred_at < today + timedelta(days=1))
                    .order_by(Visit.occurred_at.desc()))


def _replies(session: Session, clinic: Clinic, today: datetime) -> Section:
    """Today's texts and web check-ins together (an SMS check-in is its text already). A text
    counts only if its client is the clinic's too, as in the inbox: a misfiled one never shows."""
    texts = (select(InboundMessage, Client).join(Client, InboundMessage.client_id == Client.id)
             .where(belongs(InboundMessage, clinic.id), belongs(Client, clinic.id),
                    InboundMessage.received_at >= today)
             .order_by(InboundMessage.received_at.desc()))
    pages = (select(CheckIn, Client).join(Client, CheckIn.client_id == Client.id)
             .where(belongs(CheckIn, clinic.id), CheckIn.source == "web",
                    CheckIn.created_at >= today)
             .order_by(CheckIn.created_at.desc()))
    rows = ([(m.received_at, c, m) for m, c in session.exec(texts.limit(LISTED))]
            + [(k.created_at, c, k) for k, c in session.exec(pages.limit(LISTED))])
    rows.sort(key=lambda row: row[0], reverse=True)
    return Section(_count(session, texts) + _count(session, pages), rows[:LISTED])


def _failed(session: Session, clinic: Clinic, since: datetime) -> Section:
    return _section(session, select(Message, Client).join(Client, Message.client_id == Client.id)
                    .where(belongs(Message, clinic.id), Message.status.in_(FAILED),
                           Message.due_at >= since)
                    .order_by(Message.due_at.desc(), Message.id.desc()))
