"""Dashboard, enrolment after a session, a visit's timeline and the client page."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, get_timezone_location
from flask import Response, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import current_user
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlmodel import or_, select
from werkzeug.datastructures import MultiDict

from service import db
from service.care import audit, triage
from service.care.conversations import MEANING_WORDS, MESSAGE_WORDS
from service.care.enrolment import enrol as enrol_visit
from service.care.enrolment import revoke_and_resend
from service.care.escalations import acknowledge as acknowledge_escalation
from service.care.maintenance import suggestion_for
from service.care.privacy import erase_client, export_client
from service.care.schemas import LANGUAGES, VisitIn
from service.care.scope import mine, theirs
from service.domain.contraindications import CONTRAINDICATIONS, answer
from service.domain.escalation import RED_FLAG_WORDS, read_reason
from service.domain.roles import Permission
from service.messaging import phones
from service.messaging.links import client_page_url
from service.models import (
    Appointment,
    CheckIn,
    Client,
    Clinic,
    Escalation,
    Message,
    StaffUser,
    Visit,
    utcnow,
)
from service.web.auth import sessions
from service.web.security import local_path
from service.web.staff import bp, clinic, owned, page_number, requires
from service.web.staff.chart import pain_chart
from service.web.staff.plain_errors import plain_errors
from service.web.staff.screening import screened


@bp.context_processor
def reader_region() -> dict:
    """Staff read phone numbers in their clinic's region's format: (202) 555-0100 in the US."""
    return {"region": phones.region_of(clinic().phone)}


@bp.app_template_filter("local")
def local(moment: datetime | None, zone: str | None = None) -> str:
    """A time in the clinic's (or the given) zone, short and plain, in the page's language:
    "Mon 7 Dec, 10:00", "lun 7 dic, 10:00"."""
    if moment is None:
        return ""
    return format_datetime(moment, "EEE d MMM, HH:mm", tzinfo=ZoneInfo(zone or clinic().time_zone),
                           locale=g.get("locale") or "en")


@bp.app_template_filter("zone_words")
def zone_words(zone: str) -> str:
    """A time zone as staff say it, "New York" ("Nueva York"), not "America/New_York" (which
    also breaks mid-word on a narrow phone)."""
    return get_timezone_location(zone, locale=g.get("locale") or "en", return_city=True)


@bp.app_template_filter("breakable")
def breakable(address: str) -> Markup:
    """An email address that may wrap after its @ and before a dot, never inside a word."""
    return escape(address).replace("@", Markup("@<wbr>")).replace(".", Markup("<wbr>."))


@bp.app_template_filter("channel_words")
def channel_words(channel: str) -> str:
    """How a message went, in the page's language: "text" or "email", never "sms"."""
    return {"sms": _("text"), "email": _("email")}.get(channel, channel)


@bp.app_template_filter("meaning_words")
def meaning_words(meaning: str) -> str:
    """What a reply meant, in words: "not understood", "check-in", never "unknown", "checkin"."""
    return _(MEANING_WORDS[meaning]) if meaning in MEANING_WORDS else meaning


@bp.app_template_filter("message_words")
def message_words(kind: str) -> str:
    """A message's kind as staff read it: "24-hour care window", not "window_start"."""
    return _(MESSAGE_WORDS[kind]) if kind in MESSAGE_WORDS else kind.replace("_", " ")


# The statuses (and check-in answers) a row stores, in the page's language: the stored value is
# the English word.
STATUS_WORDS = {
    "pending": lazy_gettext("pending"), "claimed": lazy_gettext("claimed"),
    "sent": lazy_gettext("sent"), "delivered": lazy_gettext("delivered"),
    "undelivered": lazy_gettext("undelivered"), "failed": lazy_gettext("failed"),
    "cancelled": lazy_gettext("cancelled"), "skipped": lazy_gettext("skipped"),
    "open": lazy_gettext("open"), "acknowledged": lazy_gettext("acknowledged"),
    "concern": lazy_gettext("concern"), "urgent": lazy_gettext("urgent"),
    "booked": lazy_gettext("booked"), "confirmed": lazy_gettext("confirmed"),
    "reschedule_requested": lazy_gettext("reschedule_requested"),
    "better": lazy_gettext("better"), "same": lazy_gettext("same"), "worse": lazy_gettext("worse"),
}


@bp.app_template_filter("status_words")
def status_words(value: str) -> str:
    return str(STATUS_WORDS.get(value, value))


@bp.app_template_filter("reason_words")
def reason_words(reason: str) -> str:
    """An escalation's stored (English) reason in the page's language, its red-flag words too;
    one the domain cannot read (an older free text) is shown as stored."""
    read = read_reason(reason)
    if read is None:
        return reason
    msgid, values = read
    flags = RED_FLAG_WORDS.values()
    return _(msgid, **{name: _(value) if value in flags else value for name, value in values.items()})


@bp.app_template_filter("age")
def age(moment: datetime) -> str:
    """How long something has waited, at a glance: "12 min", "2 h", "3 d"."""
    minutes = int((utcnow() - moment).total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // (24 * 60)} d"


@bp.get("/")
@requires(Permission.VIEW_CLIENTS)
def dashboard():
    """The triage screen: counts, then the open escalations most urgent first, a page at a time
    (?show= one count's rows, ?page=); a bad parameter shows the first page and says why (400)."""
    show, (page, problem) = request.args.get("show") or None, page_number()
    if show not in (None, *triage.SHOWS):
        show, problem = None, _("show: one of %(names)s.", names=", ".join(triage.SHOWS))
    here = clinic()
    board = triage.board(db.session(), here, utcnow(), show=show, page=page)
    if current_user.can(Permission.VIEW_CLINICAL):
        _saw("dashboard_viewed", None, shown=sorted({client.id for _, client in board.escalations}
                                                   | {row[1].id for row in board.replies.rows}))
    return render_template("web/staff/dashboard.html", clinic=here, board=board, show=show,
                           problem=problem, flag_words=RED_FLAG_WORDS,
                           failed_days=triage.FAILED_DAYS), 400 if problem else 200


@bp.post("/escalations/<int:escalation_id>/acknowledge")
@requires(Permission.ACKNOWLEDGE)
def acknowledge(escalation_id: int):
    row = owned(Escalation, escalation_id)
    if row.status == "open":
        note = (request.form.get("note") or "").strip()[:500] or None
        acknowledge_escalation(db.session(), row, utcnow(), actor=f"staff:{current_user.id}",
                               staff_id=current_user.id, note=note)
        db.session().commit()
        flash(_("Escalation acknowledged."))
    return redirect(local_path(request.form.get("next")) or url_for("staff.dashboard"))


def _form_payload(form, here: Clinic) -> dict:
    """The enrolment form as the API's request body: one validation path for both."""
    starts = form.get("next_appointment", "").strip() or form.get("appointment_preset", "")
    if starts:
        try:
            starts = datetime.fromisoformat(starts).replace(tzinfo=ZoneInfo(here.time_zone))
            starts = starts.isoformat()
        except ValueError:
            pass  # pydantic names the field and the reason
    return {
        "client": {
            "name": form.get("name", ""), "phone": form.get("phone") or None,
            "email": form.get("email") or None, "language": form.get("language", "en"),
            "time_zone": here.time_zone, "sms_consent": form.get("sms_consent") == "on",
        },
        "pain_before": form.get("pain_before") or None,
        "pain_after": form.get("pain_after") or None,
        "visit_number": 1 if form.get("first_visit") == "on" else None,
        "next_appointment": {"starts_at": starts} if starts else None,
        "rebook_weeks": form.get("rebook_weeks") or None,
    }


TIME_RULES = ("occurred_at", "next_appointment.starts_at", "rebook_weeks")


def _time_rules_despite(payload: dict, exc: ValidationError, now: datetime) -> dict[str, str]:
    """The rules on the visit's times when other fields failed, so that a person fixes them all
    at once: checked on the rest of the form (the failed fields left out) if it holds together
    without them; the contact rules are not, as leaving a bad number out changes their answer."""
    rest = {key: dict(value) if isinstance(value, dict) else value
            for key, value in payload.items()}
    for location in (error["loc"] for error in exc.errors()):
        parent = rest.get(location[0]) if len(location) > 1 else rest
        if isinstance(parent, dict):
            parent.pop(location[-1], None)
    try:
        rules = VisitIn.model_validate(rest).cross_field_errors(now)
    except ValidationError:
        return {}
    return {location: why for location, why in rules.items() if location in TIME_RULES}


@bp.route("/visits/new", methods=["GET", "POST"])
@requires(Permission.ENROL)
def enrol():
    here = clinic()
    errors = {}
    if request.method == "POST":
        now = utcnow()
        ticked, unanswered = answer(request.form.getlist("contraindication"),
                                    request.form.get("none_apply") == "on")
        payload = _form_payload(request.form, here) | {"contraindications": ticked}
        try:
            data = VisitIn.model_validate(payload)
            errors = plain_errors(phones.region_of(here.phone), rules=data.cross_field_errors(now))
        except ValidationError as exc:
            errors = plain_errors(phones.region_of(here.phone), exc,
                                  rules=_time_rules_despite(payload, exc, now))
        if unanswered:
            errors["contraindication"] = _(unanswered)
        if not errors:
            session = db.session()
            visit = enrol_visit(session, here, data, now, actor=f"staff:{current_user.id}")[0]
            screened(session, visit, request.form.get("override_reason", ""), now)
            return redirect(url_for("staff.visit", visit_id=visit.id))
    status = 422 if errors else 200
    form = request.form
    if request.method == "GET" and request.args.get("client", type=int):  # a returning client
        returning = owned(Client, request.args.get("client", type=int))
        _saw("client_viewed", returning.id, on="enrol_form")
        form = _client_fields(returning)
    return render_template("web/staff/enrol.html", clinic=here, form=form, errors=errors,
                           contraindications=CONTRAINDICATIONS,
                           languages=LANGUAGES, presets=_appointment_presets(here)), status


def _appointment_presets(here: Clinic) -> list[tuple[int, datetime]]:
    """Next appointments a tap away: in 1, 2 and 3 weeks at this time of day (on the quarter hour
    before), as the clinic's wall-clock time the appointment field holds."""
    now = utcnow().astimezone(ZoneInfo(here.time_zone)).replace(tzinfo=None, second=0,
                                                                 microsecond=0)
    now = now.replace(minute=now.minute - now.minute % 15)
    return [(weeks, now + timedelta(weeks=weeks)) for weeks in (1, 2, 3)]


def _client_fields(client: Client) -> MultiDict:
    """The enrol form filled in with a known client's details and consent."""
    consented = client.sms_consent_at and not client.sms_opted_out_at
    return MultiDict({"name": client.name, "phone": client.phone or "", "email": client.email or "",
                      "language": client.language} | ({"sms_consent": "on"} if consented else {}))


@bp.post("/clients/search")
@requires(Permission.VIEW_CLIENTS)
def search_clients():
    """As-you-type lookup for the enrol form; a POST so that no name or number lands in a URL
    (and so in logs)."""
    q = str((request.get_json(silent=True) or {}).get("q", "")).strip()[:60]
    if len(q) < 2:
        return jsonify([])
    pattern = "%" + q.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
    digits = "".join(ch for ch in q if ch.isdigit())
    conditions = [Client.name.ilike(pattern, escape="\\")]
    if len(digits) >= 3:
        conditions.append(Client.phone.like(f"%{digits}%"))
    rows = db.session().exec(
        mine(Client, current_user.clinic_id).where(or_(*conditions))
        .order_by(Client.name).limit(8)
    ).all()
    _saw("clients_searched", None, found=[c.id for c in rows])
    return jsonify([{"id": c.id, "name": c.name, "phone": c.phone, "email": c.email,
                     "language": c.language, "sms_consent": bool(_client_fields(c).get("sms_consent"))}
                    for c in rows])


@bp.get("/visits/<int:visit_id>")
@requires(Permission.VIEW_CLIENTS)
def visit(visit_id: int):
    row = owned(Visit, visit_id)
    session = db.session()
    client = session.get(Client, row.client_id)
    _saw("visit_viewed", client.id, visit_id=row.id)
    messages = session.exec(mine(Message, row.clinic_id).where(Message.visit_id == row.id)
                            .order_by(Message.due_at, Message.id)).all()
    return render_template("web/staff/visit.html", visit=row, client=client, messages=messages)


@bp.get("/clients/<int:client_id>")
@requires(Permission.VIEW_CLIENTS)
def client_page(client_id: int):
    client = owned(Client, client_id)
    # The page link is the client's credential: shown to those who keep it, and logged as seen.
    page_link = current_user.can(Permission.ENROL) and client_page_url(
        current_app.extensions["aftercare.config"], client.id, client.link_version)
    _saw("client_viewed", client.id, **({"link_shown": True} if page_link else {}))
    session = db.session()
    visits = session.exec(select(Visit).where(theirs(Visit, client))
                          .order_by(Visit.occurred_at.desc())).all()
    messages = session.exec(select(Message).where(theirs(Message, client))
                            .order_by(Message.due_at.desc(), Message.id.desc()).limit(100)).all()
    appointments = session.exec(select(Appointment).where(theirs(Appointment, client))
                                .order_by(Appointment.starts_at.desc())).all()
    clinical = _clinical_record(session, client) if current_user.can(Permission.VIEW_CLINICAL) else {}
    return render_template("web/staff/client.html", client=client, visits=visits,
                           messages=messages, appointments=appointments, languages=LANGUAGES,
                           page_link=page_link, **clinical)


def _clinical_record(session, client: Client) -> dict:
    """Check-ins, escalations, the pain chart and the interval suggestion: read only for a role
    that may see clinical detail, so a front desk's page never holds them, even hidden."""
    checkins = session.exec(select(CheckIn).where(theirs(CheckIn, client))
                            .order_by(CheckIn.created_at)).all()
    escalations = session.exec(select(Escalation).where(theirs(Escalation, client))
                               .order_by(Escalation.opened_at.desc())).all()
    acknowledgers = dict(session.exec(select(StaffUser.id, StaffUser.name).where(
        StaffUser.id.in_({e.acknowledged_by_id for e in escalations} - {None}))).all())
    return {"checkins": checkins, "escalations": escalations, "acknowledgers": acknowledgers,
            "chart": pain_chart([(c.created_at, c.pain) for c in checkins if c.pain is not None],
                                _("Pain (0-10) over time")),
            "suggestion": suggestion_for(session, client)}


@bp.post("/clients/<int:client_id>/language")
@requires(Permission.ENROL)
def set_language(client_id: int):
    client = owned(Client, client_id)
    language = request.form.get("language")
    if language in LANGUAGES:
        client.language = language
        db.session().add(client)
        audit.record(db.session(), "language_changed", clinic_id=client.clinic_id,
                     client_id=client.id, actor=f"staff:{current_user.id}", language=language)
        db.session().commit()
        flash(_("Language saved."))
    return redirect(url_for("staff.client_page", client_id=client.id))


@bp.get("/clients/<int:client_id>/export.json")
@sessions.recent_password()
@requires(Permission.EXPORT)
def export(client_id: int):
    client = owned(Client, client_id)
    _saw("client_exported", client.id)
    body = jsonify(export_client(db.session(), client, utcnow()))
    return Response(body.get_data(), mimetype="application/json", headers={
        "Content-Disposition": f'attachment; filename="client-{client.id}.json"'})


@bp.route("/clients/<int:client_id>/erase", methods=["GET", "POST"])
@sessions.recent_password()
@requires(Permission.ERASE)
def erase(client_id: int):
    client = owned(Client, client_id)
    if request.method == "POST":
        if request.form.get("confirm") != "ERASE":
            flash(_("Type ERASE to confirm."))
            return render_template("web/staff/erase.html", client=client), 422
        erase_client(db.session(), client, utcnow(), actor=f"staff:{current_user.id}")
        db.session().commit()
        flash(_("The client's personal data was erased and their pending messages cancelled."))
        return redirect(url_for("staff.dashboard"))
    return render_template("web/staff/erase.html", client=client)


@bp.post("/clients/<int:client_id>/link")
@requires(Permission.ENROL)
def revoke_link(client_id: int):
    """Every page link sent to the client stops working; a new one goes to them."""
    client = owned(Client, client_id)
    channels = revoke_and_resend(db.session(), clinic(), client, utcnow(),
                                 actor=f"staff:{current_user.id}")
    db.session().commit()
    if not channels:
        flash(_("Old links no longer work. No new link was sent: the client has no phone or email "
                "we may use."))
    else:
        by = _("text and email") if len(channels) > 1 else _("text") if "sms" in channels else _("email")
        flash(_("Old links no longer work. A new link is on its way by %(by)s.", by=by))
    return redirect(url_for("staff.client_page", client_id=client.id))


def _saw(action: str, client_id: int | None, **detail) -> None:
    """Who saw what, committed at once: the access log (a page view writes nothing else)."""
    audit.record(db.session(), action, clinic_id=current_user.clinic_id, client_id=client_id,
                 actor=f"staff:{current_user.id}", **detail)
    db.session().commit()
