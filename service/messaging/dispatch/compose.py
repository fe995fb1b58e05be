"""Composing the outgoing message: a claimed row rendered with its template and its values, at
send time."""

from collections.abc import Callable
from datetime import datetime

from service.config import Config
from service.domain import careplan
from service.domain.messages import MessageKind
from service.messaging import phones
from service.messaging.calendar import appointment_ics
from service.messaging.channels import Attachment, Outgoing
from service.messaging.dispatch.load import Row
from service.messaging.links import client_page_url
from service.messaging.rendering import Renderer, local_time_label
from service.models import utcnow


class _Lazy:
    """A template value made on first use: Jinja prints it with str() and tests it with bool().
    What it makes is GSM-7 safe already (local_time_label, an ASCII link)."""

    __slots__ = ("_make", "_value")

    def __init__(self, make: Callable[[], str]):
        self._make, self._value = make, None

    def __str__(self) -> str:
        if self._value is None:
            self._value = self._make() or ""
        return self._value

    def __bool__(self) -> bool:
        return bool(str(self))


def render(row: Row, config: Config, renderer: Renderer) -> Outgoing:
    """The message as it goes out, in the reader's language and zone."""
    message, client, clinic, visit = row.message, row.client, row.clinic, row.visit
    staff = message.kind == MessageKind.STAFF_ALERT
    # Staff read English; an answer to a client's text is in the language they wrote it in.
    language = "en" if staff or not client else message.params.get("language") or client.language
    zone = client.time_zone if client else clinic.time_zone
    appointment = row.appointment
    params = message.params
    if params.get("team_sees_at"):  # when a held alert reaches the team, as the client reads it
        params = {**params, "team_sees_at": local_time_label(
            datetime.fromisoformat(params["team_sees_at"]), zone, language)}
    # Numbers as the reader dials them: the region of the phone that gets this text (for an
    # email, the clinic's own). Lazy, like the labels below: parsing a number costs more than
    # rendering most texts, and most texts show none.
    region = _Lazy(lambda: phones.region_of(
        message.recipient if message.channel == "sms" else clinic.phone))
    context = {
        "client_name": client and (client.name if staff else (client.name.split() or [""])[0]),
        "clinic_name": clinic.name,
        "clinic_phone": _Lazy(lambda: phones.display(clinic.phone, str(region))),
        "clinic_tel": _Lazy(lambda: phones.tel_href(clinic.phone)),
        "emergency_number": _Lazy(lambda: phones.emergency_number(str(region))),
        "first_visit": bool(visit and visit.visit_number == 1),
        # A late enrolment's window text says the window began at the session, not now.
        "window_started_earlier": bool(
            visit and careplan.window_started_earlier(visit.occurred_at, utcnow())),
        # Lazy: formatted only if the template shows them (babel and signing are costly).
        "window_ends": visit and _Lazy(lambda: local_time_label(
            careplan.window_ends_at(visit.occurred_at), zone, language)),
        "appointment": appointment and _Lazy(lambda: local_time_label(
            appointment.starts_at, zone, language, with_date=True)),
        "page_url": _Lazy(lambda: client_page_url(config, client.id, client.link_version))
        if not staff else None,
        "answer": None,
        "client_url": client and f"{config.PUBLIC_BASE_URL}/clients/{client.id}",
        "severity": row.escalation and row.escalation.severity,
        "reasons": row.escalation.reasons if row.escalation else [],
        "reply_text": None,
        "renotify_count": 0,
        "team_sees_at": None,
        "daily_send_cap": None,  # a staff alert about the clinic, not a client: its cap's reached
        **params,
    }
    wording = clinic.plan_overrides.get("wording", {}).get(language)
    rendered = renderer.render(message.kind, message.channel, language, context, wording)
    attachments = ()
    if message.channel == "email" and appointment and message.kind == careplan.APPOINTMENT_REMINDER:
        ics = appointment_ics(appointment.id, appointment.starts_at, clinic.name, clinic.phone)
        attachments = (Attachment("appointment.ics", "text/calendar", ics),)
    callback = sender = None
    if message.channel == "sms":
        callback = f"{config.PUBLIC_BASE_URL}/webhooks/twilio/status?m={message.id}"
        sender = clinic.sms_sender  # the clinic's own number: its replies come back to it
    return Outgoing(to=message.recipient, body=rendered.body, subject=rendered.subject,
                    html=rendered.html, attachments=attachments, status_callback=callback,
                    sender=sender)
