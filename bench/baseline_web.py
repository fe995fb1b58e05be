"""The baseline's enrolment, for the HTTP benchmark: the project's app plus POST /baseline/visits,
which writes the client and the visit as the project does, but keeps each planned message as an
APScheduler job in a SQLAlchemyJobStore (one INSERT each, outside the visit's transaction), as
the naive design has it. Its webhook, POST /baseline/webhooks/twilio/sms (bench/urgent.py), is
the project's, after which each message the reply queued becomes one more job, due now.

    gunicorn 'bench.baseline_web:create_app()'
"""

from flask import Blueprint, g, jsonify, request
from pydantic import ValidationError
from sqlmodel import func, select

from bench import baseline
from service import create_app as create_service_app
from service import db
from service.care.enrolment import channels_for, upsert_client
from service.care.maintenance import plan_settings_for
from service.care.schemas import VisitIn, field_errors
from service.domain import careplan
from service.extensions import csrf
from service.models import Message, Visit, utcnow
from service.web import webhooks
from service.web.api.routes import error, require_api_key


def create_app():
    app = create_service_app()
    scheduler = baseline.scheduler(app.config["DATABASE_URL"])
    scheduler.__class__ = baseline._EnqueueOnly  # a web process adds jobs, never runs them
    scheduler.start(paused=True)
    bp = Blueprint("baseline", __name__)

    @bp.post("/baseline/visits")
    @require_api_key
    def create_visit():  # the API's name: its scope (enrol) is the API's
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict):
            return error(400, "invalid_json", "the body must be a JSON object")
        try:
            data = VisitIn.model_validate(payload)
        except ValidationError as exc:
            return error(422, "validation_failed", "some fields are invalid", field_errors(exc))
        now = utcnow()
        session = db.session()
        client = upsert_client(session, g.clinic, data.client, now)
        number = 1 + session.exec(select(func.count()).select_from(Visit)
                                  .where(Visit.client_id == client.id)).one()
        visit = Visit(clinic_id=g.clinic.id, client_id=client.id, external_id=data.external_id,
                      occurred_at=data.occurred_at or now, visit_number=number,
                      pain_before=data.pain_before, pain_after=data.pain_after,
                      channels=list(channels_for(client, g.clinic, data.channels)))
        session.add(visit)
        session.commit()
        facts = careplan.VisitFacts(occurred_at=visit.occurred_at, visit_number=number,
                                    time_zone=client.time_zone, channels=tuple(visit.channels),
                                    appointment_at=None, enrolled_at=now)
        planned = careplan.plan_visit(facts, plan_settings_for(session, g.clinic, client))
        for message in planned:
            scheduler.add_job(baseline.send_planned, "date", run_date=message.due_at,
                              kwargs={"visit_id": visit.id, "kind": message.kind,
                                      "channel": message.channel},
                              id=f"visit-{visit.id}-{message.kind}-{message.channel}")
        return jsonify({"id": visit.id, "client_id": client.id,
                        "messages": [{"kind": m.kind, "channel": m.channel,
                                      "due_at": m.due_at.isoformat()} for m in planned]}), 201

    @bp.post("/baseline/webhooks/twilio/sms")
    def inbound_sms():
        """Signed and handled by the project's webhook; the rows it wrote become jobs (found by
        id: the benchmark posts one reply at a time and nothing else writes messages meanwhile)."""
        before = db.session().exec(select(func.max(Message.id))).one() or 0
        response = webhooks.inbound_sms()
        queued = db.session().exec(select(Message.id).where(Message.id > before,
                                                            Message.status == "pending")).all()
        for message_id in queued:
            scheduler.add_job(baseline.send_reminder, "date", run_date=utcnow(),
                              args=[message_id], id=f"message-{message_id}")
        return response

    csrf.exempt(bp)
    app.register_blueprint(bp)
    return app
