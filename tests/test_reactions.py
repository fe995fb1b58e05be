"""A phone's reaction to one of our texts is never an answer.

Phones send a "like" (or love, laugh, emphasis, question, dislike) on a text as a new text that quotes
ours, full of our own answer words: "Liked “Reply 1 better, 2 same, 3 worse…”". Each case quotes
texts the service really sends, rendered by the real templates in English and Spanish.
"""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from service.care.inbound import ACTIONS, keep
from service.domain.replies import Intent, interpret
from service.messaging.rendering import Renderer
from service.models import Appointment, AuditEvent, CheckIn, Escalation, InboundMessage, Message
from tests.conftest import BOTH_BACKENDS
from tests.helpers import NOW, ON_CALL_PHONE, PHONE, count_rows, drain, enrol, text, texts_to
from tests.message_contexts import SMS_KINDS, contexts

# Every SMS we send, in both languages, with long and short names, links and labels.
RENDERED = sorted({Renderer().render(kind, "sms", language, ctx).body
                   for kind in SMS_KINDS for language in ("en", "es") for _, ctx in contexts()})
CHECKIN_EN, CHECKIN_ES = (Renderer().render("checkin", "sms", language, ctx).body
                          for language, (_, ctx) in zip(("en", "es"), list(contexts())[-2:], strict=True))

# How each platform writes a reaction around the quoted text q.
FORMATS = {
    # iPhone, English
    "liked": "Liked “{q}”", "loved": "Loved “{q}”", "disliked": "Disliked “{q}”",
    "laughed": "Laughed at “{q}”", "emphasized": "Emphasized “{q}”", "questioned": "Questioned “{q}”",
    "unliked": "Removed a like from “{q}”", "unloved": "Removed a heart from “{q}”",
    "ios18": "Reacted 👍 to “{q}”", "ios18-skin": "Reacted 🙏🏽 to “{q}”",
    "ios18-removed": "Removed 😂 from “{q}”",
    # Android apps, and Google Messages with its invisible separators
    "android-emoji": "👍 to “{q}”", "android-with": 'Reacted with 👍 to "{q}"',
    "android-liked": 'Liked "{q}"',
    "google": "\u200aReacted \u200b👍\u200b to \u200a{q}\u200a\u200a",
    "google-removed": "\u200aRemoved \u200c❤️\u200c from \u200a{q}\u200a\u200a",
    # iPhone, Spanish
    "le-gusto": "Le gustó “{q}”", "le-encanto": "Le encantó “{q}”", "no-le-gusto": "No le gustó “{q}”",
    "se-rio": "Se rió de “{q}”", "enfatizo": "Enfatizó “{q}”", "cuestiono": "Cuestionó “{q}”",
    "reacciono": "Reaccionó con 👍 a “{q}”", "le-gusta": "Le gusta “{q}”", "le-dio-risa": "Le dio risa “{q}”",
}


def _is_only_a_reaction(message: str, reminder_open: bool = False) -> None:
    reply = interpret(message, reminder_open=reminder_open)
    assert reply.intent == Intent.REACTION, message
    assert (reply.answer, reply.pain, reply.red_flags) == (None, None, ()), message
    assert ACTIONS[reply.intent] is keep  # stored for the inbox, nothing else


QUOTED = {
    "checkin-en": CHECKIN_EN,
    "checkin-es": CHECKIN_ES,
    "checkin-en-cut": "Reply 1 better, 2 same, 3 worse…",
    "checkin-es-cut": CHECKIN_ES[:70] + "…",
    "stop-line": next(body for body in RENDERED if body.endswith("Reply STOP to opt out")),
    "reminder": next(body for body in RENDERED if "Reply C to confirm" in body),
    "confirmed-es": next(body for body in RENDERED if "queda confirmada" in body),
    "staff-alert": next(body for body in RENDERED if "red flag: numbness or tingling" in body),
}


@pytest.mark.parametrize("quoted", QUOTED.values(), ids=QUOTED.keys())
@pytest.mark.parametrize("form", FORMATS.values(), ids=FORMATS.keys())
@pytest.mark.parametrize("reminder_open", [False, True])
def test_a_reaction_to_our_text_is_never_an_answer(form, quoted, reminder_open):
    _is_only_a_reaction(form.format(q=quoted), reminder_open)


def test_the_texts_quoted_are_full_of_answer_words():
    """What makes the table above worth having: read as a reply, each quoted text is an answer."""
    assert interpret(CHECKIN_EN).intent == Intent.CHECKIN
    assert interpret(QUOTED["checkin-en-cut"]).answer == "worse"
    assert interpret(QUOTED["stop-line"]).intent == Intent.OPT_OUT
    assert interpret(QUOTED["reminder"], reminder_open=True).intent in (Intent.CONFIRM, Intent.RESCHEDULE)
    assert interpret(QUOTED["confirmed-es"]).intent == Intent.CONFIRM
    assert interpret(QUOTED["staff-alert"]).red_flags


def test_a_reaction_cut_short_without_its_closing_quote():
    _is_only_a_reaction("Liked “Reply 1 better, 2 same, 3 worse…")
    _is_only_a_reaction('Loved "Reply 1 better, 2 same, 3 worse...')


@pytest.mark.parametrize(("message", "intent", "red_flags"), [
    # Words typed after a reaction make it an ordinary message, read as any other.
    ("Liked “Reply 1 better, 2 same, 3 worse…” worse now", Intent.CHECKIN, ()),
    ("Liked “Reply 1 better” but I can't walk", Intent.RED_FLAG, ("cannot_walk",)),
    ("Liked “Reply 1 better, 2 same, 3 worse…”\nSTOP", Intent.OPT_OUT, ()),
    ("Le gustó “Responda 1 mejor, 2 igual, 3 peor” pero tengo fiebre", Intent.RED_FLAG, ("fever",)),
    # A verb without a quote, or a quote without a verb, is not a reaction either.
    ("Liked the heat tip. Worse today though", Intent.CHECKIN, ()),
    ("“worse”", Intent.CHECKIN, ()),
    ("Loved it, thanks", Intent.UNKNOWN, ()),
    ("Reacted badly to “the session”, my legs are numb", Intent.RED_FLAG, ("numbness",)),
])
def test_anything_more_than_a_reaction_is_read_as_a_message(message, intent, red_flags):
    reply = interpret(message)
    assert (reply.intent, reply.red_flags) == (intent, red_flags)


@given(form=st.sampled_from(sorted(FORMATS.values())), quoted=st.sampled_from(RENDERED),
       cut=st.none() | st.integers(min_value=1, max_value=300), straight=st.booleans(),
       reminder_open=st.booleans())
def test_any_reaction_to_any_text_we_send_is_never_an_answer(form, quoted, cut, straight, reminder_open):
    if cut is not None and cut < len(quoted):
        quoted = quoted[:cut] + "…"  # how phones shorten a long text
    message = form.format(q=quoted)
    if straight:
        message = message.replace("“", '"').replace("”", '"')
    _is_only_a_reaction(message, reminder_open)


# --- through the real webhook ------------------------------------------------------------------

@pytest.fixture
def checked_in(client, clinic, providers, dispatcher):
    """A client whose 24-hour check-in question went out."""
    visit = enrol(client, clinic[1])
    drain(dispatcher, NOW + timedelta(hours=24, seconds=10))
    assert any("Reply 1 better, 2 same, 3 worse" in body for body in texts_to(providers[0], PHONE))
    providers[0].reset()
    return visit


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
@pytest.mark.parametrize("reaction", [
    "Liked “Reply 1 better, 2 same, 3 worse…”",
    "Questioned “Back Walk Clinic: Hi Ana, your 24-hour aftercare window is over”",
    "\u200aReacted \u200b😢\u200b to \u200aReply 1 better, 2 same, 3 worse\u200a\u200a",
    "Le gustó “Responda 1 mejor, 2 igual, 3 peor…”",
])
def test_a_reaction_through_the_webhook_is_kept_and_nothing_else(client, session, providers, dispatcher,
                                                                 checked_in, reaction):
    moment = NOW + timedelta(hours=25)
    queued = count_rows(session, Message)
    text(client, reaction, moment)
    drain(dispatcher, moment + timedelta(seconds=5))
    [inbound] = session.exec(select(InboundMessage)).all()
    assert (inbound.body, inbound.intent, inbound.client_id) == (reaction, "reaction",
                                                                 checked_in["client_id"])
    assert count_rows(session, Escalation) == count_rows(session, CheckIn) == 0
    assert count_rows(session, Message) == queued  # no advice, no clarifying text, no alert
    assert texts_to(providers[0], PHONE) == texts_to(providers[0], ON_CALL_PHONE) == []
    actions = session.exec(select(AuditEvent.action).where(
        AuditEvent.action.not_in(("visit_enrolled", "api_key_created")))).all()  # the fixture's
    assert actions == ["inbound_interpreted"]


def test_a_like_on_a_reminder_does_not_confirm_it(client, clinic, session, providers, dispatcher):
    starts = NOW + timedelta(days=3)
    enrol(client, clinic[1], next_appointment={"starts_at": starts.isoformat()})
    drain(dispatcher, starts - timedelta(hours=23, minutes=59))
    [reminder] = [b for b in texts_to(providers[0], PHONE) if "Reply C to confirm" in b]
    text(client, f"Liked “{reminder}”", starts - timedelta(hours=20))
    assert session.exec(select(Appointment)).one().status == "booked"
