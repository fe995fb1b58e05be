"""Instructions, the 24-hour window, one-tap check-in and red flags (the same rules as an SMS
reply), the next appointment with an .ics, and which messages the client gets.

The signed link is the credential: no cookie session. Each form carries a token bound to the link
(links.form_token); a post records, then redirects (303) to the page showing the outcome, and a
second post of the same form records nothing new. A tampered, expired or revoked link gets a
friendly page and no data; an erased client's link a neutral one that accepts nothing.
"""

from datetime import datetime
from functools import wraps
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_time
from flask import Response, current_app, g, redirect, render_template, request, url_for
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from service import db
from service.care import audit, checkins
from service.care.checkins import record_check_in
from service.care.enrolment import channels_for, replan_channels
from service.care.escalations import open_escalation
from service.care.privacy import is_erased
from service.domain import escalation as rules
from service.domain.careplan import window_ends_at
from service.domain.replies import ANSWERS, RED_FLAGS
from service.messaging import outbox, phones
from service.messaging.calendar import appointment_ics
from service.messaging.links import form_id_from, form_token, read_token
from service.models import Appointment, CheckIn, Client, Clinic, Visit, utcnow
from service.web.client_page import bp

CHANNELS = ("sms", "email")
DONE = ("opted_out", "opted_in", "texts_on", "channel_saved")  # what ?done= may confirm after a redirect


def _config():
    return current_app.extensions["aftercare.config"]


def _clinic(client: Client) -> Clinic:
    return db.session().get(Clinic, client.clinic_id)


def linked(view):
    """Resolves the link's token to its client, or answers for the link: the friendly "expired"
    page (tampered, expired, revoked) or the neutral page of an erased client."""

    @wraps(view)
    def wrapper(token: str):
        found = read_token(_config(), token)
        client = found and db.session().get(Client, found[0])
        if not client:
            return _invalid()
        g.locale = client.language
        if is_erased(client):
            return _gone(client)
        if client.link_version != found[1]:
            return _invalid()
        return view(client, token)

    return wrapper


def _invalid():
    return render_template("web/client/invalid.html"), 404


def _gone(client: Client):
    """No name, no data, nothing accepted: the clinic's name and where to get urgent help."""
    clinic = _clinic(client)
    return render_template("web/client/gone.html", clinic=clinic, page_language=client.language,
                           emergency=phones.emergency_number(phones.region_of(clinic.phone))), 410


def form_checked(view):
    """A form post from the page (under @linked): its form token is passed on as form_id, or the
    "form expired" page answers for a token missing, forged, too old, or from a revoked link."""

    @wraps(view)
    def wrapper(client: Client, token: str):
        form_id = form_id_from(_config(), request.form.get("form_token"), client)
        if form_id is None:
            clinic = _clinic(client)
            return render_template("web/client/form_expired.html", clinic=clinic, token=token,
                                   page_language=client.language, **_numbers(client, clinic)), 400
        return view(client, token, form_id)

    return wrapper


def _numbers(client: Client, clinic: Clinic) -> dict:
    """The reader's region (their numbers' format) and the emergency number where the clinic is."""
    return {"region": phones.region_of(client.phone or clinic.phone),
            "emergency": phones.emergency_number(phones.region_of(clinic.phone))}


def _when(moment: datetime, client: Client, now: datetime) -> dict:
    """A moment as the client reads it: "today"/"tomorrow"/"later" and the local time."""
    zone = ZoneInfo(client.time_zone)
    days = (moment.astimezone(zone).date() - now.astimezone(zone).date()).days
    return {"day": {0: "today", 1: "tomorrow"}.get(days, "later"),
            "time": format_time(moment, "short", tzinfo=zone, locale=client.language)}


def _window_line(client: Client, now: datetime) -> dict | None:
    """When the 24-hour window of the latest visit ends, in the client's words and zone."""
    visit = db.session().exec(select(Visit).where(Visit.client_id == client.id)
                              .order_by(Visit.occurred_at.desc())).first()
    if visit is None:
        return None
    ends = window_ends_at(visit.occurred_at)
    return {"over": ends <= now, **_when(ends, client, now)}


def _next_appointment(client: Client, now: datetime) -> Appointment | None:
    return db.session().exec(
        select(Appointment).where(Appointment.client_id == client.id, Appointment.starts_at > now,
                                  Appointment.status != "cancelled")
        .order_by(Appointment.starts_at)).first()


def _check_in_outcome(client: Client, form_id: str | None, now: datetime) -> dict | None:
    """What the client is told after the check-in this form recorded (shown again on reload)."""
    row = form_id and db.session().exec(select(CheckIn).where(
        CheckIn.client_id == client.id, CheckIn.form_id == form_id)).first()
    if not row:
        return None
    outcome = {"kind": checkins.assess(row, client).severity or "thanks"}  # urgent, concern
    escalation = open_escalation(db.session(), client.id)
    if escalation and escalation.last_notified_at and escalation.last_notified_at > now:
        outcome["team_sees"] = _when(escalation.last_notified_at, client, now)
    return outcome


def _messages(client: Client, clinic: Clinic) -> dict:
    """Which channels the client has, gets, stopped, and may choose between."""
    has = {"sms": bool(client.phone), "email": bool(client.email)}
    stopped = {"sms": client.sms_opted_out_at, "email": client.email_opted_out_at}
    receiving = [c for c in CHANNELS if has[c] and not stopped[c]]
    plan = channels_for(client, clinic)
    return {
        "receiving": receiving,
        "stopped": [c for c in CHANNELS if has[c] and stopped[c]],
        "stop_options": receiving + (["both"] if len(receiving) == 2 else []),
        # A choice only between channels that reach the client: a phone with consent, an email.
        "choices": ["sms", "email", "both"] if client.can_receive_sms and "email" in receiving else [],
        "chosen": "both" if len(plan) == 2 else plan[0] if plan else None,
        "texting": client.can_receive_sms,
    }


def _page(client: Client, token: str, *, outcome: dict | None = None, done: str | None = None,
          status: int = 200):
    now = utcnow()
    clinic = _clinic(client)
    appointment = _next_appointment(client, now)
    appointment_label = appointment and format_datetime(
        appointment.starts_at, "full", tzinfo=ZoneInfo(client.time_zone), locale=client.language)
    return render_template("web/client/page.html", client=client, clinic=clinic, token=token,
                           window=_window_line(client, now), appointment=appointment,
                           appointment_label=appointment_label, outcome=outcome, done=done,
                           messages=_messages(client, clinic),
                           form_token=lambda: form_token(_config(), client),
                           page_language=client.language, **_numbers(client, clinic)), status


def _back(token: str, **outcome) -> Response:
    """Post/redirect/get: a reload shows the outcome again and posts nothing."""
    return redirect(url_for("client_page.page", token=token, **outcome), 303)


@bp.get("/<token>")
@linked
def page(client: Client, token: str):
    outcome = _check_in_outcome(client, request.args.get("checkin"), utcnow())
    done = request.args.get("done")
    return _page(client, token, outcome=outcome, done=done if done in DONE else None)


@bp.post("/<token>/checkin")
@linked
@form_checked
def check_in(client: Client, token: str, form_id: str):
    session = db.session()
    if session.exec(select(CheckIn.id).where(CheckIn.form_id == form_id)).first():
        return _back(token, checkin=form_id)  # a reload, a double tap, back and submit again
    red_flags = tuple(flag for flag in RED_FLAGS if flag in request.form.getlist("red_flag"))
    answer = request.form.get("answer")
    pain = request.form.get("pain", type=int)
    if answer in ANSWERS or red_flags:
        pain = None
    elif pain is None or not rules.PAIN_MIN <= pain <= rules.PAIN_MAX:
        return _page(client, token, outcome={"kind": "invalid"}, status=422)
    answer = answer if answer in ANSWERS else None
    try:
        result = record_check_in(session, _clinic(client), client, answer=answer, pain=pain,
                                 red_flags=red_flags, source="web", now=utcnow(), form_id=form_id)
        audit.record(session, "web_check_in", clinic_id=client.clinic_id, client_id=client.id,
                     actor="client", answer=answer, pain=pain, red_flags=list(red_flags),
                     severity=result.assessment.severity)
        session.commit()
    except IntegrityError:  # the same form posted twice at once: the first one counts
        session.rollback()
    return _back(token, checkin=form_id)


@bp.get("/<token>/optout")
@linked
def opt_out_confirm(client: Client, token: str):
    return _opt_out_page(client, token)


def _opt_out_page(client: Client, token: str, status: int = 200):
    clinic = _clinic(client)
    return render_template("web/client/optout.html", client=client, clinic=clinic, token=token,
                           messages=_messages(client, clinic),
                           form_token=form_token(_config(), client),
                           page_language=client.language, **_numbers(client, clinic)), status


@bp.post("/<token>/optout")
@linked
@form_checked
def opt_out(client: Client, token: str, form_id: str):
    stop = request.form.get("stop")
    if stop not in _messages(client, _clinic(client))["stop_options"]:
        return _opt_out_page(client, token, status=422)
    channels = list(CHANNELS) if stop == "both" else [stop]
    now = utcnow()
    if "sms" in channels:
        client.sms_opted_out_at = now
    if "email" in channels:
        client.email_opted_out_at = now
    db.session().add(client)
    audit.record(db.session(), "opted_out", clinic_id=client.clinic_id, client_id=client.id,
                 actor="client", via="web", channels=channels)
    replan_channels(db.session(), client, now)
    # What the other channel does not carry now waits, cancelled, for an opt-in (as after STOP).
    outbox.cancel_opted_out(db.session(), client.id, channels)
    db.session().commit()
    return _back(token, done="opted_out")


@bp.post("/<token>/optin")
@linked
@form_checked
def opt_in(client: Client, token: str, form_id: str):
    channel = request.form.get("channel")
    if channel in _messages(client, _clinic(client))["stopped"]:  # else: on already, nothing to do
        now = utcnow()
        if channel == "sms":
            client.sms_opted_out_at, client.sms_opted_in_at = None, now
        else:
            client.email_opted_out_at = None
        db.session().add(client)
        audit.record(db.session(), "opted_in", clinic_id=client.clinic_id, client_id=client.id,
                     actor="client", via="web", channels=[channel])
        replan_channels(db.session(), client, now)
        db.session().commit()
    return _back(token, done="texts_on" if channel == "sms" else "opted_in")


@bp.post("/<token>/channels")
@linked
@form_checked
def choose_channels(client: Client, token: str, form_id: str):
    choice = request.form.get("choice")
    if choice not in _messages(client, _clinic(client))["choices"]:
        return _page(client, token, status=422)
    if choice != client.channel_choice:
        now = utcnow()
        client.channel_choice = choice
        db.session().add(client)
        audit.record(db.session(), "channel_chosen", clinic_id=client.clinic_id,
                     client_id=client.id, actor="client", via="web", choice=choice)
        replan_channels(db.session(), client, now)
        db.session().commit()
    return _back(token, done="channel_saved")


@bp.get("/<token>/appointment.ics")
@linked
def appointment_calendar(client: Client, token: str):
    appointment = _next_appointment(client, utcnow())
    if not appointment:
        return _invalid()
    clinic = _clinic(client)
    ics = appointment_ics(appointment.id, appointment.starts_at, clinic.name, clinic.phone)
    return Response(ics, mimetype="text/calendar",
                    headers={"Content-Disposition": 'attachment; filename="appointment.ics"'})
