"""Twilio's webhooks. Every request must carry a valid X-Twilio-Signature: 403 and nothing stored
otherwise."""

import logging
from functools import wraps

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from service import db
from service.care.inbound import receive
from service.messaging import outbox
from service.models import utcnow
from service.ops.logs import mask_phones
from service.ops.metrics import INBOUND_MESSAGES, WEBHOOK_SIGNATURE_FAILURES

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")
log = logging.getLogger(__name__)


def signed_url() -> str:
    """The URL Twilio signed: the public one, not what Flask sees behind a TLS-terminating proxy."""
    query = request.query_string.decode()
    return current_app.config["PUBLIC_BASE_URL"] + request.path + (f"?{query}" if query else "")


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
    if not 0 < message_id <= db.MAX_ID:
        abort(404, "no such message")
    with db.engine().begin() as conn:
        outbox.record_delivery(conn, message_id, sid, request.form.get("MessageStatus", ""),
                               request.form.get("ErrorCode") or None, utcnow())
    return "", 204


@bp.post("/sms")
@require_twilio_signature
def inbound_sms():
    """Answers with empty TwiML: replies to the client go out through the outbox within a tick."""
    # NUL cannot be stored (PostgreSQL text) and no text needs it: dropped after the signature
    # check, which covers the form as Twilio sent it.
    form = {key: value.replace("\x00", "") for key, value in request.form.items()}
    sid = form.get("MessageSid") or form.get("SmsSid")
    sender = form.get("From")
    if not sid or not sender:
        abort(400, "MessageSid and From are required")
    session = db.session()
    try:
        inbound = receive(session, sid, sender, form.get("To", ""), form.get("Body", ""),
                          utcnow())
        session.commit()
    except IntegrityError:  # the same MessageSid, retried concurrently: the other one handled it
        session.rollback()
        inbound = None
    if inbound is not None:
        INBOUND_MESSAGES.labels(inbound.intent).inc()
        log.info("inbound SMS from %s", mask_phones(sender),
                 extra={"sid": sid, "intent": str(inbound.intent)})
    return Response(str(MessagingResponse()), mimetype="text/xml")
