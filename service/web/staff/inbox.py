"""The inbox (every text and web check-in from the clinic's clients), a client's conversation,
and a staff member's text back to them (care/conversations.py does the work)."""

import re
import uuid

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from service import db
from service.care import audit, conversations
from service.domain.escalation import RED_FLAG_WORDS
from service.domain.roles import Permission
from service.models import Client, utcnow
from service.web.staff import bp, clinic, owned, page_number, requires

_REPLY_ID = re.compile(r"[0-9a-f]{32}")


@bp.app_context_processor
def inbox_badge() -> dict:
    """The nav's unread count, counted only where a page shows it (a logged-in clinical reader)."""
    return {"inbox_unread": lambda: conversations.unread_count(db.session(), current_user.clinic_id)}


@bp.get("/inbox")
@requires(Permission.VIEW_CLINICAL)
def inbox():
    meaning, (page, problem) = request.args.get("meaning") or None, page_number()
    if meaning is not None and meaning not in conversations.MEANINGS:
        return render_template("web/staff/inbox.html", **_inbox_page(None, page), problem=_(
            "meaning: one of %(meanings)s, not %(given)s", meanings=", ".join(conversations.MEANINGS),
            given=repr(meaning[:40]))), 422
    return render_template("web/staff/inbox.html", **_inbox_page(meaning, page),
                           problem=problem), 400 if problem else 200


def _inbox_page(meaning: str | None, number: int) -> dict:
    page = conversations.inbox(db.session(), current_user.clinic_id, meaning, number)
    return {"inbox": page, "meaning": meaning, "meanings": conversations.MEANINGS,
            "red_flag_words": RED_FLAG_WORDS}


@bp.get("/clients/<int:client_id>/conversation")
@requires(Permission.VIEW_CLINICAL)
def conversation(client_id: int):
    """Opening it marks what the client sent as read by this staff member (and logs the view)."""
    client = owned(Client, client_id)
    session = db.session()
    marked = conversations.mark_read(session, client, current_user.id, utcnow())
    audit.record(session, "conversation_viewed", clinic_id=client.clinic_id, client_id=client.id,
                 actor=f"staff:{current_user.id}", marked_read=marked)
    session.commit()
    return _conversation_page(client, text="", problem=None)


def _conversation_page(client: Client, text: str, problem: str | None):
    session, here = db.session(), clinic()
    preview = conversations.reply_preview(here, client, text) if text else None
    if preview:
        preview["summary"] = _("%(num)s text message(s), %(encoding)s", num=preview["segments"],
                               encoding=preview["encoding"])
    return render_template(
        "web/staff/conversation.html", client=client, clinic=here, text=text, problem=problem,
        entries=conversations.conversation(session, client), preview=preview,
        channel=conversations.reply_channel(session, here, client),
        max_reply=conversations.MAX_REPLY, reply_id=uuid.uuid4().hex,
        words=conversations.MEANING_WORDS, red_flag_words=RED_FLAG_WORDS,
    ), 422 if problem else 200


@bp.post("/clients/<int:client_id>/reply")
@requires(Permission.REPLY)
def reply(client_id: int):
    client = owned(Client, client_id)
    session, here = db.session(), clinic()
    text = (request.form.get("text") or "").replace("\r\n", "\n")
    problem = _problem(text)
    channel = conversations.reply_channel(session, here, client)
    if problem is None and channel is None:
        problem = _("The client has stopped our texts or emails, or we have no phone or email "
                    "we may use: call them.")
    if problem:
        return _conversation_page(client, text[:conversations.MAX_REPLY * 2], f"text: {problem}")
    reply_id = request.form.get("reply_id", "")
    if not _REPLY_ID.fullmatch(reply_id):  # a form from before: one message all the same
        reply_id = uuid.uuid4().hex
    conversations.send_reply(session, here, client, current_user, text, channel, utcnow(),
                             reply_id)
    session.commit()
    flash(_("Reply on its way by text.") if channel[0] == "sms" else _("Reply on its way by email."))
    return redirect(url_for("staff.conversation", client_id=client.id) + "#reply")


@bp.post("/clients/<int:client_id>/reply/preview")
@requires(Permission.REPLY)
def reply_preview(client_id: int):
    """The reply as the client will read it, with its segment count (the page's live counter)."""
    client = owned(Client, client_id)
    data = request.get_json(silent=True)
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str):
        return jsonify(field="text", problem="a JSON body with the reply's text"), 400
    problem = _problem(text)
    preview = conversations.reply_preview(clinic(), client, text[:conversations.MAX_REPLY * 2])
    summary = _("%(length)s of %(max)s characters: %(num)s text message(s), %(encoding)s",
                length=len(text), max=conversations.MAX_REPLY, num=preview["segments"],
                encoding=preview["encoding"])
    return jsonify({**preview, "problem": problem, "length": len(text), "summary": summary}), \
        422 if problem else 200


def _problem(text: str) -> str | None:
    """conversations.reply_problem's words in the page's language."""
    problem = conversations.reply_problem(text)
    return problem and _(problem[0], **problem[1])
