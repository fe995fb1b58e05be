"""Late enrolments (occurred_at up to 14 days ago): what is past its use is not sent, and the
window's first text never reads as if the window started now."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain.careplan import (
    CHECKIN,
    COVERED_BY,
    FOLLOWUP,
    HEAT,
    HYDRATION,
    REBOOK_NUDGE,
    TOGETHER,
    WINDOW_ADVICE,
    WINDOW_START,
    PlanSettings,
    VisitFacts,
    plan_visit,
    window_ends_at,
)
from service.domain.sendtime import SendTimeFacts, skip_reason
from service.messaging.rendering import TEMPLATES_DIR, Renderer, local_time_label
from service.messaging.sms_segments import is_gsm7, segment_count
from tests.conftest import auth
from tests.helpers import EMAIL, NOW, PHONE, at, enrol
from tests.message_contexts import LONG, LONG_ES_LABELS, SHORT

NEW_YORK = "America/New_York"
NY = ZoneInfo(NEW_YORK)
SESSION = NOW  # Wednesday 10:00 in New York
SPEAKING = {language: {"email": EMAIL, "language": language} for language in ("en", "es")}
DEFAULTS = PlanSettings()


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def plan(occurred_at, enrolled_at, plan_settings=DEFAULTS, zone=NEW_YORK):
    facts = VisitFacts(occurred_at=occurred_at, visit_number=1, time_zone=zone,
                       channels=("sms",), enrolled_at=enrolled_at)
    return {m.kind: m.due_at for m in plan_visit(facts, plan_settings)}


# --- the plan (pure) ---------------------------------------------------------------------------

def test_enrolled_23_hours_late_the_window_text_goes_at_once_without_its_tips():
    due = plan(ny(2026, 6, 10, 10, 0), ny(2026, 6, 11, 9, 0))
    assert due == {
        WINDOW_START: ny(2026, 6, 11, 9, 0),  # at once, not at the (past) session time
        CHECKIN: ny(2026, 6, 11, 10, 0),
        FOLLOWUP: ny(2026, 6, 13, 10, 0),
        REBOOK_NUDGE: ny(2026, 6, 17, 10, 0),
    }


def test_enrolled_73_hours_late_only_the_follow_up_goes_not_the_check_in_with_it():
    due = plan(ny(2026, 6, 10, 10, 0), ny(2026, 6, 13, 11, 0))
    assert due == {FOLLOWUP: ny(2026, 6, 13, 11, 0), REBOOK_NUDGE: ny(2026, 6, 17, 10, 0)}


def test_a_follow_up_less_than_an_hour_ahead_covers_a_late_check_in():
    due = plan(ny(2026, 6, 10, 10, 0), ny(2026, 6, 13, 9, 30))
    assert CHECKIN not in due and due[FOLLOWUP] == ny(2026, 6, 13, 10, 0)


def test_a_check_in_a_day_before_the_follow_up_still_goes():
    due = plan(ny(2026, 6, 10, 10, 0), ny(2026, 6, 11, 16, 0))  # 30 h late
    assert due[CHECKIN] == ny(2026, 6, 11, 16, 0) and due[FOLLOWUP] == ny(2026, 6, 13, 10, 0)
    assert not WINDOW_ADVICE & due.keys()


def test_three_hours_late_the_passed_hydration_tip_rides_with_the_window_text():
    due = plan(ny(2026, 6, 10, 10, 0), ny(2026, 6, 10, 13, 0))
    assert due[WINDOW_START] == ny(2026, 6, 10, 13, 0)
    assert HYDRATION not in due
    assert due[HEAT] == ny(2026, 6, 10, 16, 0)  # still ahead: kept


def test_a_window_text_held_by_quiet_hours_past_the_window_s_end_is_not_planned():
    # Session 21:45, enrolled 23.5 h later at 21:15 (quiet): the window text would wait until
    # 08:00, after the window ended at 21:45; the check-in goes at 08:00 instead.
    due = plan(ny(2026, 6, 10, 21, 45), ny(2026, 6, 11, 21, 15))
    assert not WINDOW_ADVICE & due.keys()
    assert due[CHECKIN] == ny(2026, 6, 12, 8, 0)


def test_late_at_night_everything_passed_lands_on_one_morning_text():
    due = plan(ny(2026, 6, 10, 20, 0), ny(2026, 6, 10, 22, 30))
    assert due[WINDOW_START] == ny(2026, 6, 11, 8, 0)
    assert HYDRATION not in due and HEAT not in due  # 22:00 and 02:00 would land with it


def test_an_enrolment_at_the_session_plans_as_before():
    session = ny(2026, 6, 10, 10, 0)
    assert plan(session, session) == plan(session, None)
    assert plan(session, session + timedelta(minutes=5))[HYDRATION] == ny(2026, 6, 10, 12, 0)


def test_plan_and_send_time_draw_the_window_s_end_in_the_same_place():
    session = ny(2026, 6, 10, 10, 0)
    end = window_ends_at(session)
    just_before = plan(session, end - timedelta(minutes=1))
    assert just_before[WINDOW_START] == end - timedelta(minutes=1)
    assert skip_reason(SendTimeFacts(WINDOW_START, end - timedelta(minutes=1), session)) is None
    assert WINDOW_START not in plan(session, end)
    assert skip_reason(SendTimeFacts(WINDOW_START, end, session)) == "window_over"


quarter_hours = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


@settings(max_examples=300, deadline=None)
@given(
    occurred_naive=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)),
    late=st.integers(0, 14 * 24 * 60).map(lambda minutes: timedelta(minutes=minutes)),
    zone=st.sampled_from(["America/New_York", "Europe/London", "Australia/Sydney", "UTC"]),
    quiet_start=quarter_hours,
    quiet_end=quarter_hours,
)
def test_late_plan_invariants(occurred_naive, late, zone, quiet_start, quiet_end):
    occurred_at = occurred_naive.replace(tzinfo=UTC)
    enrolled_at = occurred_at + late
    due = plan(occurred_at, enrolled_at, PlanSettings(quiet_start=quiet_start,
                                                      quiet_end=quiet_end), zone)
    assert FOLLOWUP in due  # the plan never goes silent on the client's back
    for kind, due_at in due.items():
        assert due_at >= enrolled_at  # nothing planned in the past
        if kind in WINDOW_ADVICE:
            assert due_at < window_ends_at(occurred_at)
        for covering in COVERED_BY.get(kind, ()):
            if covering in due:
                assert not timedelta(0) <= due[covering] - due_at <= TOGETHER
    if late >= timedelta(hours=73):
        assert due.keys() <= {FOLLOWUP, REBOOK_NUDGE}


# --- wording -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def renderer():
    return Renderer(TEMPLATES_DIR)


@pytest.mark.parametrize("language, values", [("en", LONG), ("en", SHORT), ("es", LONG_ES_LABELS)])
@pytest.mark.parametrize("first_visit", [True, False])
def test_the_late_window_text_stays_gsm7_within_two_segments(renderer, language, values,
                                                             first_visit):
    ctx = dict(values, first_visit=first_visit, window_started_earlier=True)
    body = renderer.render(WINDOW_START, "sms", language, ctx).body
    assert is_gsm7(body)
    assert segment_count(body)[1] <= 2, body


# --- through the API and the dispatcher --------------------------------------------------------

def window_end_label(language):
    return local_time_label(SESSION + timedelta(hours=24), NEW_YORK, language)


@pytest.mark.parametrize("language, late_words, now_words", [
    ("en", "From your session until", "For 24 hours"),
    ("es", "Hasta el", "(24 h)"),
])
def test_a_text_23_hours_after_the_session_says_the_window_began_then(
        client, clinic, providers, dispatcher, language, late_words, now_words):
    twilio, _ = providers
    enrolled = SESSION + timedelta(hours=23)
    visit = enrol(client, clinic[1], SESSION, posted_at=enrolled, person=SPEAKING[language])
    assert [m["kind"] for m in visit["messages"]] == ["window_start", "checkin", "followup",
                                                      "rebook_nudge"]
    with at(enrolled + timedelta(minutes=1)):
        dispatcher.drain()
    [sms] = twilio.messages
    assert late_words in sms.body and now_words not in sms.body
    assert window_end_label(language) in sms.body
    if language == "en":
        assert sms.body.startswith(
            f"Back Walk Clinic: From your session until {window_end_label('en')}: no exercise")
        assert "today" not in sms.body  # the session was yesterday

    with at(SESSION + timedelta(hours=24, minutes=1)):  # the check-in, as planned
        dispatcher.drain()
    assert len(twilio.messages) == 2


def test_on_time_the_text_says_the_window_starts_now(client, clinic, providers, dispatcher):
    twilio, _ = providers
    enrol(client, clinic[1], SESSION, posted_at=SESSION + timedelta(minutes=2),
          person=SPEAKING["en"])
    with at(SESSION + timedelta(minutes=3)):
        dispatcher.drain()
    [sms] = twilio.messages
    assert sms.body.startswith(f"Back Walk Clinic: For 24 hours, until {window_end_label('en')}")
    assert "since your session" not in sms.body and "lighter pressure today" in sms.body


@pytest.mark.parametrize("language, late, on_time", [
    ("en", ("began at your session", "Your aftercare until "),
     ("starts now", "Your aftercare for the next 24 hours")),
    ("es", ("empezó con su sesión", "Sus cuidados hasta el "),
     ("empieza ahora", "Sus cuidados para las próximas 24 horas")),
])
@pytest.mark.parametrize("hours_late", [23, 0])
def test_the_window_email_never_says_starts_now_for_a_window_that_began_earlier(
        client, clinic, providers, dispatcher, language, late, on_time, hours_late):
    _, smtp = providers
    enrolled = SESSION + timedelta(hours=hours_late, minutes=2)
    enrol(client, clinic[1], SESSION, posted_at=enrolled, person=SPEAKING[language],
          channels=["email"])
    with at(enrolled + timedelta(minutes=1)):
        dispatcher.drain()
    [email] = smtp.wait_for(1)
    text = email.message.get_body(("plain",)).get_content()
    html = email.message.get_body(("html",)).get_content()
    says, never = (late, on_time) if hours_late else (on_time, late)
    assert says[0] in text and says[0] in html
    assert email.message["Subject"].startswith(says[1])
    assert never[0] not in text and never[0] not in html
    assert not email.message["Subject"].startswith(never[1])
    assert window_end_label(language) in text


def test_73_hours_late_one_follow_up_goes_and_no_check_in(client, clinic, session, providers,
                                                          dispatcher):
    twilio, _ = providers
    enrolled = SESSION + timedelta(hours=73)
    visit = enrol(client, clinic[1], SESSION, posted_at=enrolled, person=SPEAKING["en"])
    assert [(m["kind"], m["due_at"]) for m in visit["messages"]] == [
        ("followup", enrolled.isoformat()),
        ("rebook_nudge", (SESSION + timedelta(weeks=1)).isoformat())]
    with at(enrolled + timedelta(seconds=30)):
        dispatcher.drain()
    [sms] = twilio.messages
    assert "How is your back now?" in sms.body


# --- the 14-day limit --------------------------------------------------------------------------

def test_the_openapi_document_states_the_14_day_limit(client):
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["VisitIn"]
    assert "At most 14 days ago" in schema["properties"]["occurred_at"]["description"]


@pytest.mark.parametrize("age, status", [
    (timedelta(days=14) - timedelta(minutes=1), 201),
    (timedelta(days=14) + timedelta(minutes=1), 422),
])
def test_a_visit_may_be_enrolled_up_to_14_days_late(client, clinic, age, status):
    now = SESSION + age
    body = {"client": {"name": "Ana Ruiz", "phone": PHONE, "sms_consent": True},
            "occurred_at": SESSION.isoformat()}
    with at(now):
        response = client.post("/api/v1/visits", json=body, headers=auth(clinic[1]))
    assert response.status_code == status
    if status == 422:
        assert response.get_json()["fields"] == {"occurred_at": "is more than 14 days ago"}
    else:  # no window texts, no check-in: the follow-up asks how the back is now
        assert [m["kind"] for m in response.get_json()["messages"]] == ["followup", "rebook_nudge"]
