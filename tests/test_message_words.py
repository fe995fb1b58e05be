"""Words, not codes, in what people read: dates that read one way, red flags in plain words, the same
urgent advice by text and email, phone numbers as the reader dials them (and taps them, in an email),
and, at night, when the team will really see a concern."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from service.messaging.rendering import Renderer, local_time_label
from service.models import Escalation
from tests.conftest import BOTH_BACKENDS
from tests.helpers import EMAIL, NOW, ON_CALL_PHONE, PHONE, drain, enrol, text, texts_to
from tests.message_contexts import EMAIL_KINDS, STAFF_ACCOUNT_EMAILS, contexts

# --- dates ---------------------------------------------------------------------------------------


def test_spanish_labels_name_the_whole_day_never_mar():
    """ "mar" is martes, but also marzo and "the sea": every day and month is written in full."""
    monday = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    days = [local_time_label(monday + timedelta(days=n), "Europe/Madrid", "es") for n in range(7)]
    assert days == ["lunes, 16:00", "martes, 16:00", "miércoles, 16:00", "jueves, 16:00",
                    "viernes, 16:00", "sabado, 16:00", "domingo, 16:00"]  # GSM-7 has no á
    assert local_time_label(monday + timedelta(days=1), "Europe/Madrid", "es", with_date=True) == (
        "martes, 3 de marzo, 16:00")


def test_english_labels_keep_their_short_unambiguous_days():
    moment = datetime(2026, 3, 3, 21, 0, tzinfo=UTC)
    assert local_time_label(moment, "America/New_York", "en") == "Tue 4:00 PM"
    assert local_time_label(moment, "America/New_York", "en", with_date=True) == "Tue Mar 3, 4:00 PM"


# --- red flags in words ----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_staff_alerts_name_red_flags_in_words(client, clinic, session, providers, dispatcher):
    twilio, smtp = providers
    enrol(client, clinic[1])
    moment = NOW + timedelta(hours=1)
    text(client, "I can't hold my bladder and my legs are weak", moment)
    drain(dispatcher, moment + timedelta(seconds=5))
    expected = ["red flag: new leg weakness", "red flag: loss of bladder or bowel control"]
    assert session.exec(select(Escalation)).one().reasons == expected
    [alert] = texts_to(twilio, ON_CALL_PHONE)
    [email] = smtp.messages
    for shown in (alert, email.message.get_body(("plain",)).get_content(),
                  email.message.get_body(("html",)).get_content()):
        assert all(reason in shown for reason in expected)
        assert "bladder_bowel" not in shown and "leg_weakness" not in shown


# --- one urgent advice -----------------------------------------------------------------------------

URGENT = {"en": "seek urgent medical care now", "es": "busque ayuda médica urgente ahora"}
SEVERE = {"en": "call 911 if it is severe", "es": "llame al 911 si es grave"}
CLIENT_EMAILS = [kind for kind in EMAIL_KINDS
                 if kind != "staff_alert" and kind not in STAFF_ACCOUNT_EMAILS]


@pytest.mark.parametrize("language", ["en", "es"])
def test_urgent_advice_says_the_same_by_text_and_in_every_email(language):
    renderer = Renderer()
    ctx = dict(list(contexts())[-1][1], emergency_number="911")
    sms = renderer.render("urgent_advice", "sms", language, ctx).body
    assert URGENT[language] in sms and SEVERE[language] in sms
    assert "today" not in sms and "hoy" not in sms  # not "a doctor today", then "now"
    for kind in CLIENT_EMAILS:
        email = renderer.render(kind, "email", language, ctx)
        for part in (email.body, email.html):
            assert URGENT[language] in part.lower(), (kind, part)
        assert SEVERE[language] in email.body.lower(), kind
        assert 'href="tel:911"' in email.html, kind


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_aftercare_email_lists_when_to_seek_urgent_care(language):
    signs = {"en": ("numbness or tingling in your legs or groin", "new weakness in your legs",
                    "loss of bladder or bowel control", "a fever", "cannot walk or stand"),
             "es": ("entumecimiento u hormigueo en las piernas o la ingle", "debilidad nueva en las piernas",
                    "pérdida del control de la vejiga o del intestino", "fiebre",
                    "no puede caminar ni estar de pie")}
    email = Renderer().render("checkin", "email", language, list(contexts())[-1][1])
    for part in (email.body, email.html):
        assert all(sign in part for sign in signs[language]), part


# --- numbers people can tap ------------------------------------------------------------------------

@pytest.mark.parametrize("language", ["en", "es"])
def test_every_number_in_a_client_email_is_a_tel_link(language):
    """In the HTML part of every email a client gets, the clinic's number is never shown bare."""
    ctx = dict(list(contexts())[-1][1], clinic_phone="(202) 555-0100", clinic_tel="tel:+12025550100",
               emergency_number="911")
    for kind in CLIENT_EMAILS:
        html = Renderer().render(kind, "email", language, ctx).html
        shown = html.count("(202) 555-0100")
        linked = len(re.findall(r'<a href="tel:\+12025550100"[^>]*>\(202\) 555-0100</a>', html))
        preheader = html.count("(202) 555-0100", *_preheader(html))
        assert shown and shown == linked + preheader, kind


def _preheader(html: str) -> tuple[int, int]:
    """The hidden preview line mail apps show in the inbox list: plain text, not a link."""
    start = html.find('style="display:none')
    return (start, html.find("</", start)) if start >= 0 else (0, 0)


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_an_email_shows_the_clinic_number_nationally_and_as_a_tel_link(client, clinic, providers,
                                                                       dispatcher):
    enrol(client, clinic[1], person={"phone": None, "sms_consent": False, "email": EMAIL})
    drain(dispatcher, NOW + timedelta(hours=24, seconds=10))
    [checkin] = [m for m in providers[1].messages if m.subject == "How is your back feeling?"]
    html = checkin.message.get_body(("html",)).get_content()
    plain = checkin.message.get_body(("plain",)).get_content()
    assert '<a href="tel:+12025550100" style="color:#2f5d62;">(202) 555-0100</a>' in html
    assert "(202) 555-0100" in plain
    assert "+12025550100" not in plain and ">+12025550100<" not in html


def test_a_client_with_a_foreign_phone_gets_the_international_number_and_their_emergency_number(
        client, clinic, session, providers, dispatcher):
    spain = "+34612345678"
    enrol(client, clinic[1], person={"phone": spain, "time_zone": "Europe/Madrid"})
    moment = NOW + timedelta(hours=1)  # 16:00 in Madrid
    drain(dispatcher, moment - timedelta(seconds=1))
    providers[0].reset()
    text(client, "HELP", moment, sender=spain)
    text(client, "I can't walk", moment + timedelta(seconds=1), sender=spain)
    drain(dispatcher, moment + timedelta(seconds=5))
    help_text, advice = sorted(texts_to(providers[0], spain), key=lambda body: "urgent" in body)
    assert "+1 202-555-0100" in help_text  # dialled from Spain: the international form
    assert "call 112 if it is severe" in advice and "911" not in advice


# --- honest timing -----------------------------------------------------------------------------------

NIGHT = datetime(2026, 6, 11, 7, 0, tzinfo=UTC)  # Thursday 03:00 in New York; quiet until 08:00


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
@pytest.mark.parametrize(("language", "when", "told"), [
    ("en", "The team will see this at Thu 8:00 AM; if it gets worse before then, seek urgent medical "
           "care, or call 911 if severe.", "We have let the team know."),
    ("es", "Lo veremos el jueves, 8:00; si empeora antes, busque ayuda médica urgente, o llame al 911 "
           "si es grave.", "Ya avisamos al equipo."),
])
def test_a_concern_at_night_says_when_the_team_will_see_it(client, clinic, providers, dispatcher,
                                                           language, when, told):
    enrol(client, clinic[1], person={"language": language})
    drain(dispatcher, NIGHT - timedelta(seconds=1))
    providers[0].reset()
    text(client, "3", NIGHT)
    drain(dispatcher, NIGHT + timedelta(seconds=5))
    [advice] = texts_to(providers[0], PHONE)
    assert advice.endswith(when) and told not in advice
    assert texts_to(providers[0], ON_CALL_PHONE) == []  # it is true: nobody has been told yet
    morning = NIGHT + timedelta(hours=5, minutes=30)  # 08:30: the alert went at 08:00
    drain(dispatcher, morning - timedelta(seconds=1))
    assert len(texts_to(providers[0], ON_CALL_PHONE)) == 1
    providers[0].reset()
    text(client, "3", morning)
    drain(dispatcher, morning + timedelta(seconds=5))
    [advice] = texts_to(providers[0], PHONE)
    assert advice.endswith(told)
