"""The audit trail: every inbound message, interpretation, escalation step, acknowledgement and
opt-out/opt-in lands here, readable per client."""

from sqlmodel import Session

from service.models import AuditEvent, utcnow


def record(session: Session, action: str, *, clinic_id: int | None, client_id: int | None = None,
           actor: str = "system", **detail) -> None:
    session.add(AuditEvent(clinic_id=clinic_id, client_id=client_id, actor=actor, action=action,
                           detail=detail, created_at=utcnow()))
