"""The client's language: an answer goes in the language the client wrote in when that is clear,
and staff see which language it was."""

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from service.domain.replies import interpret
from service.models import Escalation, InboundMessage
from tests.conftest import BOTH_BACKENDS
from tests.helpers import NOW, PHONE, at, drain, enrol, text, texts_to
from tests.web_helpers import log_in, make_staff


@pytest.mark.parametrize(("message", "language", "clear"), [
    ("no puedo caminar", "es", True),
    ("Mucho mejor, gracias", "es", True),
    ("me duele mucho la espalda", "es", True),
    ("I can't walk", "en", True),
    ("my back is much worse today", "en", True),
    # One word, a number or a keyword is in no language in particular.
    ("3", "en", False),
    ("7/10", "en", False),
    ("STOP", "en", False),
    ("ALTO", "es", False),
    ("peor", "es", False),
    ("worse", "en", False),
    ("si", "es", False),
    # Mixed: neither language outweighs the other enough.
    ("My back is mejor today thank you", "en", False),
])
def test_when_the_language_is_clear(message, language, clear):
    reply = interpret(message)
    assert (reply.language, reply.language_clear) == (language, clear)
    assert reply.answer_language("xx") == (language if clear else "xx")


@pytest.fixture
def enrolled_in(client, clinic, providers, dispatcher):
    """Enrols a client in a language and lets their first text go out."""
    def enrolled(language):
        enrol(client, clinic[1], person={"language": language})
        drain(dispatcher, NOW + timedelta(seconds=10))
        providers[0].reset()
    return enrolled


def answers_to(client, providers, dispatcher, message):
    """What the client gets back for one text, sent after the plan's texts so far went out."""
    moment = NOW + timedelta(hours=25)
    drain(dispatcher, moment - timedelta(seconds=1))
    providers[0].reset()
    text(client, message, moment)
    drain(dispatcher, moment + timedelta(seconds=5))
    return texts_to(providers[0], PHONE)


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_an_english_client_who_writes_in_spanish_is_answered_in_spanish(
        client, session, providers, dispatcher, enrolled_in):
    enrolled_in("en")
    [advice] = answers_to(client, providers, dispatcher, "no puedo caminar")
    assert session.exec(select(Escalation)).one().severity == "urgent"
    assert "busque ayuda médica urgente ahora" in advice and "llame al 911 si es grave" in advice
    assert session.exec(select(InboundMessage)).one().language == "es"


@pytest.mark.parametrize(("language", "message", "answered_in", "recorded"), [
    ("es", "3", "es", None),  # a bare number: the client's own language
    ("es", "my back is much worse today", "en", "en"),
    ("en", "worse", "en", None),
    ("en", "me duele mucho la espalda", "es", "es"),
])
def test_an_answer_is_in_the_language_written_when_clear_else_the_clients(
        client, session, providers, dispatcher, enrolled_in, language, message, answered_in, recorded):
    enrolled_in(language)
    [advice] = answers_to(client, providers, dispatcher, message)
    words = {"en": "pause back walking", "es": "Suspenda las sesiones"}
    assert words[answered_in] in advice
    assert session.exec(select(InboundMessage)).one().language == recorded


def test_staff_see_the_language_of_a_reply(client, clinic, session, providers, dispatcher, enrolled_in):
    enrolled_in("en")
    text(client, "no puedo caminar", NOW + timedelta(hours=25))
    text(client, "3", NOW + timedelta(hours=25, minutes=1))
    make_staff(session, clinic[0], "owner@example.com")
    with at(NOW + timedelta(hours=25, minutes=2)):  # the dashboard lists the day's replies
        log_in(client, "owner@example.com")
        page = client.get("/").get_data(as_text=True)
    replies = {m[1]: m[0] for m in re.finditer(r"<li>(?:(?!</li>).)*?“([^”]*)”(?:(?!</li>).)*</li>", page,
                                                re.S)}
    assert "(es)" in replies["no puedo caminar"]
    assert "(en)" not in replies["3"] and "(es)" not in replies["3"]
