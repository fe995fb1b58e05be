"""A clinic's own wording is data, not code (issue 14, item 5): plain words with named
placeholders, checked on save (every problem at once, nothing saved), rendered by substitution in
linear time; urgent advice and staff alerts always go in our words; one clinic's wording cannot
hold up another clinic's urgent alert."""

import html
import logging
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlmodel import Session, select

from service import db
from service.care.escalations import escalate
from service.domain import wording
from service.domain.escalation import assess
from service.domain.replies import NUMBNESS
from service.messaging.rendering import Renderer
from service.messaging.sms_segments import GSM7_MULTI
from service.models import Client, Clinic
from tests.conftest import BOTH_BACKENDS, PUBLIC_URL, make_clinic
from tests.helpers import ANA, NOW, ON_CALL_PHONE, PHONE, at, drain, enrol, text, texts_to
from tests.web_helpers import csrf_token, log_in, make_staff

BUDGET = wording.MAX_SEGMENTS * GSM7_MULTI  # characters of GSM-7 in three segments


@pytest.fixture
def owner(client, session, clinic):
    """Clinic A's owner, logged in; the settings page's form token."""
    with at(NOW):
        log_in(client, make_staff(session, clinic[0], "owner@clinic.example").email)
        return csrf_token(client.get("/settings"))


def save(client, token, **texts):
    with at(NOW):
        return client.post("/settings/wording", data={"csrf_token": token} | {
            f"wording_{kind}": value for kind, value in texts.items()})


def preview(client, token, kind, value):
    with at(NOW):
        return client.post("/settings/preview", headers={"X-CSRFToken": token},
                           json={"kind": kind, "text": value})


def stored(session, clinic_id):
    session.expire_all()
    return session.get(Clinic, clinic_id).plan_overrides.get("wording")


def store(session, clinic_row, **texts):
    """A wording written straight into the database, as one saved before this check existed."""
    row = session.get(Clinic, clinic_row.id)
    row.plan_overrides = {**row.plan_overrides, "wording": {"en": texts}}
    session.add(row)
    session.commit()


# --- the form: pure, no database --------------------------------------------------------------

def test_a_wording_renders_by_substitution_only():
    context = {"client_name": "Ana", "clinic_name": "Oak", "page_url": "https://x.example/c/t"}
    assert wording.render("{clinic_name}: Hi {first_name}. {link}", "hydration", context) == \
        "Oak: Hi Ana. https://x.example/c/t"
    # A value is never read as a wording itself.
    assert wording.render("Hi {first_name}", "hydration", {"client_name": "{clinic_name}"}) == \
        "Hi {clinic_name}"
    with pytest.raises(wording.WordingError):
        wording.render("Hi {0.__class__}", "hydration", context)


def test_the_appointment_is_a_placeholder_of_the_reminder_only():
    assert wording.problems("See you {appointment}", "appointment_reminder") == []
    [problem] = wording.problems("See you {appointment}", "hydration")
    assert problem.startswith("{appointment} is not a placeholder here")


# --- refused at save, every problem at once, nothing saved -------------------------------------

REFUSED = [
    ("{{ clinic_name }}: drink water, {{ client_name }}",
     ["has template code: write {clinic_name}, not {{ clinic_name }}"]),
    ("{% if first_visit %}Welcome{% endif %}", ["has template code", "{first_name}"]),
    ("Hi {name}, drink water", ["{name} is not a placeholder here: use {first_name}, "
                                "{clinic_name}, {clinic_phone}, {emergency_number}, {window_end}, "
                                "{link}"]),
    ("Hi {first_name, drink water", ["a brace without its pair"]),
    ("Hi {first_name}, drink water \U0001F4A7", ["\u201c\U0001F4A7\u201d cannot be sent in the "
                                                 "plain SMS alphabet (GSM-7)", "three times"]),
    ("Hi {first_name}! " + "{link} " * 7, ["segments (GSM-7) with a long name, link and times; "
                                           "keep it within 3"]),
    ("x" * 2001, ["is 2,001 characters long; a text may have at most 2,000"]),
    ("{nope} \u2019 }", ["{nope} is not a placeholder", "\u201c\u2019\u201d cannot be sent",
                         "a brace without its pair"]),
]


@pytest.mark.parametrize(("value", "words"), REFUSED)
def test_a_wording_that_cannot_be_sent_as_it_is_is_refused_with_every_reason(
        client, session, clinic, owner, value, words):
    response = save(client, owner, hydration=value)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    shown = html.unescape(re.search(r'data-testid="preview-hydration">(.*?)</div>', page, re.S)[1])
    for word in words:
        assert word in shown
    assert "Nothing was saved" in page
    assert f">{value.strip()}</textarea>" in html.unescape(page)  # kept, to be fixed
    assert stored(session, clinic[0].id) is None


def test_the_preview_lists_the_same_problems(client, clinic, owner):
    response = preview(client, owner, "hydration", "{nope} \u2019 }")
    assert response.status_code == 422
    assert [p.split(" ")[0] for p in response.get_json()["problems"]] == [
        "{nope}", "has", "\u201c\u2019\u201d"]
    assert "body" not in response.get_json()


@pytest.mark.parametrize("value", [
    "{% for i in range(100000) %}{{ client_name }}{% endfor %}",  # a loop
    "{% include 'web/base.html' %}",
    "{{ 1/0 }}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",  # recursion
    "{% if client_name != 'Alexandria' %}{% for i in range(10**8) %}{% endfor %}{% endif %}",
    "{{ client_name * 100000000 }}",
    "{{ ''.__class__.__mro__ }}",
])
def test_the_reviews_template_code_is_refused_with_a_4xx(client, session, clinic, owner, value):
    """Each was a 500, an unbounded render (41 s, 200 MB) or, cheap for the preview's sample
    name, a loop at send time: now words, refused before anything runs."""
    shown = preview(client, owner, "checkin", value)
    assert shown.status_code == 422
    assert "has template code" in shown.get_json()["problems"][0]
    assert "body" not in shown.get_json()
    assert save(client, owner, checkin=value).status_code == 422
    assert stored(session, clinic[0].id) is None


def test_a_malformed_preview_request_is_a_400(client, clinic, owner):
    for body in ({"kind": "urgent_advice", "text": "Hi"}, {"text": "Hi"}, {"kind": "checkin",
                                                                          "text": ["x"]}, [1]):
        with at(NOW):
            response = client.post("/settings/preview", headers={"X-CSRFToken": owner}, json=body)
        assert response.status_code == 400


def test_the_preview_of_the_longest_wording_is_bounded(client, clinic, owner):
    """2,000 characters of the longest placeholder: one substitution each, no more."""
    value = "{link}" * (wording.MAX_LENGTH // len("{link}"))
    response = preview(client, owner, "hydration", value)
    shown = response.get_json()
    link = preview(client, owner, "hydration", "{link}").get_json()["body"]
    assert link.startswith(f"{PUBLIC_URL}/c/")
    assert len(shown["body"]) == len(value) // len("{link}") * len(link)
    assert response.status_code == 422 and "segments" in shown["problems"][0]


# --- saved, shown and sent ---------------------------------------------------------------------

def test_the_editor_lists_each_texts_placeholders_and_starts_from_ours(client, clinic, owner):
    with at(NOW):
        page = client.get("/settings").get_data(as_text=True)
    # Each placeholder a chip (a button service/static/settings.js turns into an insertion).
    reminder = re.search(r'data-testid="placeholders-appointment_reminder">(.*?)</div>', page, re.S)[1]
    hydration = re.search(r'data-testid="placeholders-hydration">(.*?)</div>', page, re.S)[1]
    assert 'data-insert="{appointment}"' in reminder and "{appointment}" not in hydration
    for name in ("first_name", "clinic_name", "clinic_phone", "window_end", "link"):
        assert f'data-insert="{{{name}}}"' in hydration
    assert ">{clinic_name}: Hi {first_name}, a quick tip: keep sipping water" in page
    assert "{{" not in page.split('id="wording-form"')[1].split("</form>")[0]


def test_a_good_wording_is_saved_and_sent_with_real_values(client, session, clinic, owner,
                                                           providers, dispatcher):
    twilio, _ = providers
    value = ("{clinic_name}: {first_name}, no exercise until {window_end}. Call {clinic_phone} "
             "with any worry. {link} Reply STOP to opt out")
    unchanged = Renderer().starting_wording("checkin", "en")
    response = save(client, owner, window_start=value, checkin=unchanged)
    assert response.status_code == 302
    assert stored(session, clinic[0].id) == {"en": {"window_start": value}}  # checkin: ours

    enrol(client, clinic[1])
    drain(dispatcher, NOW + timedelta(minutes=1))
    [body] = texts_to(twilio, PHONE)
    assert re.fullmatch(rf"Back Walk Clinic: Ana, no exercise until Thu 10:00 AM\. Call "
                        rf"\(202\) 555-0100 with any worry\. {re.escape(PUBLIC_URL)}/c/\S+ "
                        rf"Reply STOP to opt out", body), body


def test_a_text_left_as_ours_stays_ours_whatever_the_line_breaks(client, session, clinic, owner):
    """A browser posts a textarea's line breaks as CRLF: our window text comes back so."""
    ours = Renderer().starting_wording("window_start", "en")
    assert "\n" in ours
    assert save(client, owner, window_start=ours.replace("\n", "\r\n")).status_code == 302
    assert stored(session, clinic[0].id) == {"en": {}}


def test_a_stored_wording_that_is_not_one_is_never_sent(client, session, clinic, providers,
                                                        dispatcher):
    """A wording stored around the editor (a Jinja one the migration missed) sends ours."""
    twilio, _ = providers
    store(session, clinic[0], hydration="{% for i in range(3000) %}{{ client_name }}{% endfor %}")
    enrol(client, clinic[1])
    drain(dispatcher, NOW + timedelta(hours=3))
    hydration = [b for b in texts_to(twilio, PHONE) if "sipping water" in b]
    assert hydration == ["Back Walk Clinic: Hi Ana, a quick tip: keep sipping water through the "
                         "day. Staying hydrated can help with soreness after your session."]


def test_urgent_advice_and_staff_alerts_always_use_our_wording(client, session, clinic,
                                                               providers, dispatcher):
    twilio, _ = providers
    store(session, clinic[0], urgent_advice="{clinic_name}: all is fine, {first_name}",
          staff_alert="nothing to see", concern_advice="relax")
    enrol(client, clinic[1])
    text(client, "my leg is numb and I can't walk", NOW + timedelta(minutes=30))
    drain(dispatcher, NOW + timedelta(minutes=31))
    [advice] = [b for b in texts_to(twilio, PHONE) if "urgent medical care" in b]
    assert advice.startswith("Back Walk Clinic: Ana, please seek urgent medical care now")
    [alert] = texts_to(twilio, ON_CALL_PHONE)
    assert alert.startswith("Aftercare URGENT: Ana Ruiz - ")
    assert not any(word in m.body for m in twilio.messages for word in ("fine", "nothing"))


# --- one clinic's wording cannot hold up another's sending -------------------------------------

def heaviest_allowed(client, token) -> str:
    """The most of the longest placeholder the save check lets through: that wording is saved."""
    value = "{link}"
    while len(value) < wording.MAX_LENGTH and \
            save(client, token, window_start=value + " {link}").status_code == 302:
        value += " {link}"
    return value


def test_no_clinics_wording_can_delay_another_clinics_urgent_alert(
        client, session, clinic, owner, providers, dispatcher):
    """Clinic A saves the heaviest wording the check allows; in the same drain as A's texts,
    clinic B's urgent alert goes. The work is linear: A's text, rendered with real values, is
    within the three segments the check measured with long values (before, a loop here was a
    40 s render in the shared worker)."""
    twilio, _ = providers
    heavy = heaviest_allowed(client, owner)
    assert heavy.count("{link}") >= 4
    assert stored(session, clinic[0].id) == {"en": {"window_start": heavy}}
    b_clinic, b_key = make_clinic(session, "Second Clinic")  # A's on-call number too: A pages no one
    b_phone = "+12025550177"
    enrol(client, clinic[1])
    enrol(client, b_key, person={"phone": b_phone, "name": "Bea Lopez"})
    with at(NOW + timedelta(seconds=30)):
        b_client = session.exec(select(Client).where(Client.clinic_id == b_clinic.id)).one()
        escalate(session, b_clinic, b_client, assess(None, None, (NUMBNESS,), None),
                 NOW + timedelta(seconds=30))
        session.commit()

    drain(dispatcher, NOW + timedelta(minutes=1))
    [alert] = texts_to(twilio, ON_CALL_PHONE)
    assert alert.startswith("Aftercare URGENT: Bea Lopez - ")
    [a_text] = texts_to(twilio, PHONE)
    assert a_text.count(f"{PUBLIC_URL}/c/") == heavy.count("{link}")
    assert len(a_text) <= BUDGET
    assert texts_to(twilio, b_phone)  # B's own plan text, in B's words
    assert ANA["name"] not in alert


# --- the migration of Jinja wordings ------------------------------------------------------------

JINJA_TO_PLAIN = {
    "hydration": ("{{ clinic_name }}: Hi {{client_name}}, drink water. {{ page_url }}",
                  "{clinic_name}: Hi {first_name}, drink water. {link}"),
    "appointment_reminder": ("See you {{ appointment }}, {{ client_name }}",
                             "See you {appointment}, {first_name}"),
    "checkin": ("{% if first_visit %}Hi{% endif %} {{ client_name }}", None),  # a tag
    "heat": ("Hi {{ client_name | upper }}", None),  # a filter
    "followup": ("Hi {{ client_name }}, {{ 1/0 }}", None),  # an expression
    "rebook_nudge": ("Book {{ appointment }}", None),  # no appointment to show here
    "window_start": ("Rest {{ first_visit }} :}", None),  # no placeholder, a brace of its own
}


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_the_migration_turns_jinja_wordings_into_plain_ones_or_ours(database_url, caplog):
    config = db.alembic_config(database_url)
    engine = sa.create_engine(database_url)
    table = Clinic.__table__
    with Session(engine, expire_on_commit=False) as session:
        a, _ = make_clinic(session, "Jinja Clinic")
        b, _ = make_clinic(session, "Plain Clinic", plan_overrides={"disabled_kinds": ["heat"]})
    before = ScriptDirectory.from_config(config).get_revision("0010_plain_wordings").down_revision
    try:
        command.downgrade(config, before)
        wording = {"en": {kind: jinja for kind, (jinja, _) in JINJA_TO_PLAIN.items()},
                   "es": {"hydration": "Hola {{ client_name }}"}}
        with engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == a.id)
                         .values(plan_overrides={"wording": wording, "disabled_kinds": []}))
        with caplog.at_level(logging.WARNING):
            command.upgrade(config, "head")
        with engine.connect() as conn:
            overrides = dict(conn.execute(sa.select(table.c.id, table.c.plan_overrides)).all())
        assert overrides[a.id] == {"disabled_kinds": [], "wording": {
            "en": {kind: plain for kind, (_, plain) in JINJA_TO_PLAIN.items() if plain},
            "es": {"hydration": "Hola {first_name}"}}}
        assert overrides[b.id] == {"disabled_kinds": ["heat"]}
        dropped = [kind for kind, (_, plain) in JINJA_TO_PLAIN.items() if plain is None]
        assert sorted(re.findall(rf"clinic {a.id} \(Jinja Clinic\): its (\w+) wording",
                                 caplog.text)) == sorted(dropped)

        command.downgrade(config, before)
        with engine.connect() as conn:
            back = conn.execute(sa.select(table.c.plan_overrides).where(table.c.id == a.id)).one()[0]
        assert back["wording"] == {
            "en": {"hydration": "{{ clinic_name }}: Hi {{ client_name }}, drink water. {{ page_url }}",
                   "appointment_reminder": "See you {{ appointment }}, {{ client_name }}"},
            "es": {"hydration": "Hola {{ client_name }}"}}
    finally:
        command.upgrade(config, "head")
        engine.dispose()
