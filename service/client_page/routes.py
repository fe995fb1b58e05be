"""Instructions, the 24-hour window, one-tap check-in (the same rules as an SMS reply), the next
appointment with an .ics, and opt-out. A tampered or expired link gets a friendly page, no data."""

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_time
from flask import Response, current_app, g, render_template, request
from sqlalchemy import update
from sqlmodel import select

from service import audit, db
from service.calendar import appointment_ics
from service.checkins import record_check_in
from service.client_page import bp
from service.domain.careplan import window_ends_at
from service.domain.escalation import CONCERN, URGENT
from service.links import client_id_from_token
from service.models import Appointment, Client, Clinic, Message, Visit, utcnow

ANSWERS = ("better", "same", "worse")


def _client(token: str) -> Client | None:
    client_id = client_id_from_token(current_app.extensions["aftercare.config"], token)
    client = client_id and db.session().get(Client, client_id)
    if client:
        g.locale = client.language
    return client or None


def _not_found():
    return render_template("web/client/invalid.html"), 404


def _next_appointment(client: Client, now: datetime) -> Appointment | None:
    return db.session().exec(
        select(Appointment).where(Appointment.client_id == client.id, Appointment.starts_at > now,
                                  Appointment.status != "cancelled")
        .order_by(Appointment.starts_at)).first()


def _window_line(client: Client, now: datetime) -> dict | None:
    """When the 24-hour window of the latest visit ends, in the client's words and zone."""
    visit = db.session().exec(select(Visit).where(Visit.client_id == client.id)
                              .order_by(Visit.occurred_at.desc())).first()
    if visit is None:
        return None
    zone = ZoneInfo(client.time_zone)
    ends = window_ends_at(visit.occurred_at)
    days = (ends.astimezone(zone).date() - now.astimezone(zone).date()).days
    return {"over": ends <= now, "day": {0: "today", 1: "tomorrow"}.get(days, "later"),
            "time": format_time(ends, "short", tzinfo=zone, locale=client.language)}


def _page(client: Client, token: str, outcome: str | None = None, status: int = 200):
    now = utcnow()
    clinic = db.session().get(Clinic, client.clinic_id)
    appointment = _next_appointment(client, now)
    appointment_label = appointment and format_datetime(
        appointment.starts_at, "full", tzinfo=ZoneInfo(client.time_zone), locale=client.language)
    return render_template("web/client/page.html", client=client, clinic=clinic, token=token,
                           window=_window_line(client, now), appointment=appointment,
                           appointment_label=appointment_label, outcome=outcome,
                           page_language=client.language), status


@bp.get("/<token>")
def page(token: str):
    client = _client(token)
    return _page(client, token) if client else _not_found()


@bp.post("/<token>/checkin")
def check_in(token: str):
    client = _client(token)
    if client is None:
        return _not_found()
    answer = request.form.get("answer")
    pain = request.form.get("pain", type=int)
    if answer not in ANSWERS and (pain is None or not 0 <= pain <= 10):
        return _page(client, token, outcome="invalid", status=422)
    session = db.session()
    clinic = session.get(Clinic, client.clinic_id)
    assessment = record_check_in(session, clinic, client, answer=answer if answer in ANSWERS else None,
                                 pain=pain if answer not in ANSWERS else None, red_flags=(),
                                 source="web", now=utcnow()).assessment
    audit.record(session, "web_check_in", clinic_id=clinic.id, client_id=client.id,
                 actor="client", answer=answer, pain=pain, severity=assessment.severity)
    session.commit()
    outcome = {URGENT: "urgent", CONCERN: "concern"}.get(assessment.severity, "thanks")
    return _page(client, token, outcome=outcome)


@bp.post("/<token>/optout")
def opt_out(token: str):
    client = _client(token)
    if client is None:
        return _not_found()
    session, now = db.session(), utcnow()
    client.sms_opted_out_at = client.sms_opted_out_at or now
    client.email_opted_out_at = client.email_opted_out_at or now
    session.add(client)
    session.execute(update(Message).where(Message.client_id == client.id,
                                          Message.status == "pending",
                                          Message.kind != "staff_alert")
                    .values(status="cancelled", error_code="opted_out"))
    audit.record(session, "opted_out", clinic_id=client.clinic_id, client_id=client.id,
                 actor="client", via="web")
    session.commit()
    return _page(client, token, outcome="opted_out")


@bp.get("/<token>/appointment.ics")
def appointment_calendar(token: str):
    client = _client(token)
    appointment = client and _next_appointment(client, utcnow())
    if not appointment:
        return _not_found()
    clinic = db.session().get(Clinic, client.clinic_id)
    ics = appointment_ics(appointment.id, appointment.starts_at, clinic.name, clinic.phone)
    return Response(ics, mimetype="text/calendar",
                    headers={"Content-Disposition": 'attachment; filename="appointment.ics"'})
