"""Twilio's webhooks. Every request must carry a valid X-Twilio-Signature: 403 and nothing stored
otherwise. A signed request whose ids or addresses are not of Twilio's shape is 400 naming each
field, before anything is stored: a value our columns cannot hold must never be a 500 (Twilio
would retry it, and the clinic would never see why)."""

import logging
import re
from dataclasses import dataclass
from functools import wraps

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from service import db
from service.care.inbound import receive
from service.messaging import outbox
from service.models import Clinic, Message, utcnow
from service.ops.logs import mask_phones
from service.ops.metrics import INBOUND_MESSAGES, INBOUND_UNROUTED, WEBHOOK_SIGNATURE_FAILURES
from service.web.schemas import ErrorOut

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")
log = logging.getLogger(__name__)


def signed_url() -> str:
    """The URL Twilio signed: the public one, not what Flask sees behind a TLS-terminating proxy."""
    query = request.query_string.decode()
    return current_app.config["PUBLIC_BASE_URL"] + request.path + (f"?{query}" if query else "")


@dataclass(frozen=True)
class Shape:
    pattern: re.Pattern
    reason: str

    def value(self, given: str) -> str | None:
        """What the field holds (its last group: a phone without its channel prefix), or None."""
        match = self.pattern.fullmatch(given)
        return match and match.group(match.lastindex or 0)


# Twilio's ids: two capital letters and 32 hex digits (twilio.com/docs/glossary/what-is-a-sid).
SID = Shape(re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}"),
            "is not a Twilio SID (two letters, 32 hex digits)")
# A client's address: E.164 (+ and at most 15 digits), by its shape rather than phonenumbers'
# metadata, so that a reply from a number range newer than the library still reaches the clinic.
# A channel's prefix ("whatsapp:+1...", "sms:+1...") is taken off rather than refused: a red flag
# written on WhatsApp must reach the clinic like a text (a refused webhook is lost), and the
# answer goes by SMS, to the number, under the same consent and opt-out checks.
PHONE = Shape(re.compile(r"(?:[a-z]+:)?(\+[1-9][0-9]{1,14})"),
              "is not a phone number in E.164 form (+ and at most 15 digits)")
# The number that received it: ours, E.164 or a short code.
RECEIVER = Shape(re.compile(r"(?:[a-z]+:)?(\+?[0-9]{3,15})"), "is not a phone number or short code")
ERROR_CODE = Shape(re.compile(r"[0-9]{1,10}"), "is not a Twilio error code (digits)")
SIDS = {"MessageSid": SID, "SmsSid": SID, "AccountSid": SID, "MessagingServiceSid": SID}


def checked(form: dict, shapes: dict[str, Shape]) -> dict[str, str]:
    """The fields of `shapes` that the form gives, as they hold them; 400 naming each one that is
    not of its shape."""
    values = {name: shapes[name].value(form[name]) for name in shapes if form.get(name)}
    refused = {name: shapes[name].reason for name, value in values.items() if value is None}
    if refused:
        body = ErrorOut(error="bad_request", message="fields not of Twilio's form", fields=refused)
        abort(Response(body.model_dump_json(), 400, mimetype="application/json"))
    return values


def require_twilio_signature(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        token = current_app.config["TWILIO_AUTH_TOKEN"]
        signature = request.headers.get("X-Twilio-Signature", "")
        if not token or not RequestValidator(token).validate(signed_url(), request.form, signature):
            WEBHOOK_SIGNATURE_FAILURES.labels(view.__name__).inc()
            abort(403, "invalid Twilio signature")
        return view(*args, **kwargs)

    return wrapper


@bp.post("/status")
@require_twilio_signature
def status_callback():
    message_id = request.args.get("m", type=int)
    sid = request.form.get("MessageSid", "")
    if message_id is None or not sid:
        abort(400, "m (query) and MessageSid are required")
    fields = checked(request.form, SIDS | {"ErrorCode": ERROR_CODE, "From": RECEIVER})
    if not 0 < message_id <= db.MAX_ID:
        abort(404, "no such message")
    with db.engine().begin() as conn:
        own = conn.execute(select(Clinic.sms_sender).join(Message, Message.clinic_id == Clinic.id)
                           .where(Message.id == message_id)).scalar()
        if own is not None and own not in (fields.get("From"), fields.get("MessagingServiceSid")):
            # Not the sender this clinic's text went from: another clinic's callback, forged ids.
            INBOUND_UNROUTED.labels("status").inc()
            return "", 204
        outbox.record_delivery(conn, message_id, sid, request.form.get("MessageStatus", ""),
                               request.form.get("ErrorCode") or None, utcnow())
    return "", 204


def default_senders() -> frozenset[str]:
    """The installation's own senders: a text to one is for the clinics without their own."""
    config = current_app.config
    return frozenset(sender for sender in (config["TWILIO_FROM_NUMBER"],
                                           config["TWILIO_MESSAGING_SERVICE_SID"]) if sender)


@bp.post("/sms")
@require_twilio_signature
def inbound_sms():
    """Answers with empty TwiML: replies to the client go out through the outbox within a tick."""
    # NUL cannot be stored (PostgreSQL text) and no text needs it: dropped after the signature
    # check, which covers the form as Twilio sent it.
    form = {key: value.replace("\x00", "") for key, value in request.form.items()}
    sid = form.get("MessageSid") or form.get("SmsSid")
    if not sid or not form.get("From"):
        abort(400, "MessageSid and From are required")
    fields = checked(form, SIDS | {"From": PHONE, "To": RECEIVER})
    sender = fields["From"]
    session = db.session()
    try:
        inbound = receive(session, sid, sender, fields.get("To", ""), form.get("Body", ""),
                          utcnow(), fields.get("MessagingServiceSid"), default_senders())
        session.commit()
    except IntegrityError:  # the same MessageSid, retried concurrently: the other one handled it
        session.rollback()
        inbound = None
    if inbound is not None:
        INBOUND_MESSAGES.labels(inbound.intent).inc()
        log.info("inbound SMS from %s", mask_phones(sender),
                 extra={"sid": sid, "intent": str(inbound.intent)})
    return Response(str(MessagingResponse()), mimetype="text/xml")
