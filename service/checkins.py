"""A check-in, from an SMS reply or the client's page: recorded against the latest visit and put
through the escalation rules, the same way whatever the channel."""

from datetime import datetime

from sqlmodel import Session, select

from service.domain import escalation as rules
from service.escalations import escalate
from service.models import CheckIn, Client, Clinic, Visit


def record_check_in(session: Session, clinic: Clinic, client: Client, *, answer: str | None,
                    pain: int | None, red_flags: tuple[str, ...], source: str, now: datetime,
                    inbound_id: int | None = None, reply_text: str | None = None) -> rules.Assessment:
    if answer or pain is not None:
        visit = session.exec(select(Visit).where(Visit.client_id == client.id)
                             .order_by(Visit.occurred_at.desc())).first()
        session.add(CheckIn(client_id=client.id, visit_id=visit and visit.id, answer=answer,
                            pain=pain, source=source, inbound_message_id=inbound_id,
                            created_at=now))
    assessment = rules.assess(answer, pain, red_flags, client.baseline_pain)
    escalate(session, clinic, client, assessment, now, reply_text=reply_text)
    return assessment
