"""The client's page through HTTP: the link is the credential (no cookie), each form posts once,
red flags reach on-call at once, honest timing at night, numbers to tap, opt-out you can undo,
channel choice, and the link's lifecycle (erasure, revocation, never in a log)."""

import html
import io
import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from itsdangerous import URLSafeTimedSerializer
from sqlmodel import Session, func, select

from service.accounts import apikeys
from service.care.privacy import erase_client
from service.domain.messages import MessageKind
from service.messaging.dispatch import Dispatcher
from service.messaging.links import SALT, client_page_url
from service.models import AuditEvent, CheckIn, Client, Clinic, Escalation, Message
from service.ops import logs
from service.web.client_page import routes
from tests.conftest import BOTH_BACKENDS, make_clinic
from tests.helpers import EMAIL, NOW, PHONE, enrol
from tests.web_helpers import csrf_token, log_in, make_staff

NIGHT = datetime(2026, 6, 11, 3, 30, tzinfo=UTC)  # 23:30 in New York: the clinic's quiet hours
# Ana lives in Chicago (NOW is 9:00 there, 10:00 at the clinic in New York) and has an email.
IN_CHICAGO = {"email": EMAIL, "time_zone": "America/Chicago"}


@pytest.fixture(autouse=True)
def clock():
    with freeze_time(NOW, tick=True, real_asyncio=True) as frozen:
        yield frozen


def enrolled(web, key, session, **person) -> Client:
    """tests.helpers' Ana, in Chicago with an email unless `person` says otherwise: her row."""
    return session.get(Client, enrol(web, key, person=IN_CHICAGO | person)["client_id"])


@pytest.fixture
def ana(client, clinic, session) -> Client:
    return enrolled(client, clinic[1], session)


def link(app, row: Client) -> str:
    return client_page_url(app.extensions["aftercare.config"], row.id, row.link_version) \
        .removeprefix(app.extensions["aftercare.config"].PUBLIC_BASE_URL)


@pytest.fixture
def page(app, ana) -> str:
    return link(app, ana)


def form_with(html: str, value: str) -> dict:
    """The form holding the button (or radio) with this value: its action and its form token."""
    for action, body in re.findall(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', html, re.S):
        if re.search(rf'value="{re.escape(value)}"', body):
            token = re.search(r'name="form_token" value="([^"]+)"', body)
            return {"action": action, "form_token": token and token.group(1)}
    raise AssertionError(f"no form with {value!r}")


def tap(http, page: str, value: str, field: str = "answer", **extra):
    """Opens the page and taps a button, as a browser without cookies would."""
    form = form_with(http.get(page).get_data(as_text=True), value)
    return http.post(form["action"], data={field: value, "form_token": form["form_token"], **extra})


def count(session, model, *where) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model).where(*where)).one()


@pytest.fixture
def fresh(app):
    """A browser that keeps no cookie at all (cookies blocked, or a restored tab)."""
    return app.test_client(use_cookies=False)


# --- the link is the credential ------------------------------------------------------------------

def test_a_check_in_with_no_cookie_is_recorded_then_shown_after_a_redirect(fresh, session, page):
    opened = fresh.get(page)
    assert opened.status_code == 200 and "Set-Cookie" not in opened.headers
    assert 'name="csrf_token"' not in opened.get_data(as_text=True)
    form = form_with(opened.get_data(as_text=True), "worse")
    response = fresh.post(form["action"], data={"answer": "worse", "form_token": form["form_token"]})
    assert response.status_code == 303 and "Set-Cookie" not in response.headers
    assert response.location.startswith(f"{page}?checkin=")
    shown = fresh.get(response.location).get_data(as_text=True)
    assert "pause back walking" in shown and "We have let the team know." in shown
    assert session.exec(select(CheckIn)).one().source == "web"
    assert session.exec(select(Escalation)).one().severity == "concern"


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_the_same_form_twice_and_reloads_record_one_check_in(fresh, session, page):
    form = form_with(fresh.get(page).get_data(as_text=True), "worse")
    data = {"answer": "worse", "form_token": form["form_token"]}
    first, again = fresh.post(form["action"], data=data), fresh.post(form["action"], data=data)
    assert first.location == again.location
    for _ in range(2):  # reloading the page after the check-in
        assert "pause back walking" in fresh.get(first.location).get_data(as_text=True)
    assert count(session, CheckIn) == 1
    assert count(session, AuditEvent, AuditEvent.action == "web_check_in") == 1
    assert count(session, Message, Message.kind == MessageKind.STAFF_ALERT) == 2  # one text, one email


@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_a_double_tap_that_races_records_one_check_in(app, fresh, session, page, monkeypatch):
    """Both posts passed the "already recorded?" look; the second one's insert then meets the
    first one's form id: it records nothing (no escalation either) and shows the same outcome."""
    real = routes.record_check_in

    def first_one_wins(db_session, *args, form_id, **kwargs):
        with Session(app.extensions["aftercare.engine"]) as other:
            ana = other.exec(select(Client)).one()
            other.add(CheckIn(client_id=ana.id, answer="better", source="web", form_id=form_id))
            other.commit()
        return real(db_session, *args, form_id=form_id, **kwargs)

    monkeypatch.setattr(routes, "record_check_in", first_one_wins)
    response = tap(fresh, page, "worse")
    assert response.status_code == 303
    assert count(session, CheckIn) == 1 and count(session, Escalation) == 0
    assert "Thank you!" in fresh.get(response.location).get_data(as_text=True)


def test_a_pain_score_from_the_slider(fresh, session, page):
    tap(fresh, page, "score", pain="8")
    assert session.exec(select(CheckIn)).one().pain == 8
    assert session.exec(select(Escalation)).one().reasons == ["pain 8/10", "pain up 4 from baseline 4"]


@pytest.mark.parametrize("token", [None, "", "garbage", "other-client", "before-revocation"])
def test_a_bad_form_token_is_a_friendly_400_and_records_nothing(app, fresh, session, clinic, ana,
                                                                 page, token):
    config = app.extensions["aftercare.config"]
    serializer = URLSafeTimedSerializer(config.SECRET_KEY, salt="client-page-form")
    if token == "other-client":
        other = enrolled(fresh, clinic[1], session, name="Bo", phone="+12025550177",
                         email="bo@example.com")
        token = serializer.dumps([other.id, other.link_version, "a-form"])
    elif token == "before-revocation":
        token = serializer.dumps([ana.id, ana.link_version - 1, "a-form"])
    data = {"answer": "worse"} | ({} if token is None else {"form_token": token})
    response = fresh.post(f"{page}/checkin", data=data)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "That did not go through" in text and "Nothing was recorded" in text
    assert f'href="{page}"' in text and 'href="tel:911"' in text
    assert "CSRF" not in text and "Bad Request" not in text
    assert count(session, CheckIn) == 0 and count(session, Escalation) == 0


@pytest.mark.parametrize("action, data", [("optout", {"stop": "both"}), ("optin", {"channel": "sms"}),
                                          ("channels", {"choice": "email"})])
def test_every_form_refuses_a_forged_token_and_changes_nothing(fresh, session, ana, page, action,
                                                               data):
    def state():
        session.expire_all()
        return (ana.sms_opted_out_at, ana.email_opted_out_at, ana.channel_choice,
                count(session, AuditEvent))

    before = state()
    response = fresh.post(f"{page}/{action}", data=data | {"form_token": "forged"})
    assert response.status_code == 400 and "Nothing was recorded" in response.get_data(as_text=True)
    assert state() == before


def test_a_missing_answer_is_a_422_that_names_the_choices(fresh, session, page):
    response = tap(fresh, page, "score", pain="11")
    assert response.status_code == 422
    assert "Please choose better, same or worse" in response.get_data(as_text=True)
    assert count(session, CheckIn) == 0


# --- red flags, urgent advice, numbers to tap --------------------------------------------------------

@pytest.mark.parametrize("flag", ["numbness", "leg_weakness", "bladder_bowel", "fever", "cannot_walk"])
def test_a_red_flag_tap_pages_on_call_at_once_even_at_night(fresh, session, page, clock, flag):
    clock.move_to(NIGHT)
    response = tap(fresh, page, flag, field="red_flag")
    shown = fresh.get(response.location).get_data(as_text=True)
    assert 'role="alert"' in shown and "Please seek urgent medical care now." in shown
    assert 'href="tel:911"' in shown and 'href="tel:+12025550100"' in shown
    checkin = session.exec(select(CheckIn)).one()
    assert checkin.red_flags == [flag] and checkin.answer is None and checkin.pain is None
    escalation = session.exec(select(Escalation)).one()
    assert escalation.severity == "urgent"
    alerts = session.exec(select(Message).where(Message.kind == MessageKind.STAFF_ALERT)).all()
    assert {a.channel for a in alerts} == {"sms", "email"}
    assert all(a.due_at <= NIGHT + timedelta(seconds=5) and a.priority == 0 for a in alerts)


def test_the_page_always_says_when_to_get_urgent_care(fresh, page):
    text = html.unescape(fresh.get(page).get_data(as_text=True))
    for words in ("Numbness or tingling in the legs or groin", "New weakness in a leg",
                  "Loss of bladder or bowel control", "Fever", "Can't walk or stand",
                  "please seek urgent medical care now"):
        assert words in text
    assert 'aria-labelledby="urgent-care-title"' in text


def test_every_number_is_one_to_tap_in_the_reader_s_format(fresh, page):
    text = fresh.get(page).get_data(as_text=True)
    assert '<a href="tel:+12025550100">(202) 555-0100</a>' in text
    assert '<a href="tel:911">911</a>' in text
    assert "+12025550100<" not in text and "+12025550100." not in text


def test_a_clinic_in_spain_shows_its_numbers_for_spain_and_112(app, client, session):
    clinic = Clinic(name="Clínica Sol", phone="+34911234567", time_zone="Europe/Madrid")
    session.add(clinic)
    session.commit()
    key = apikeys.issue(session, clinic, "tests")
    row = enrolled(client, key, session, phone="+34612345678", language="es",
                   time_zone="Europe/Madrid")
    text = client.get(link(app, row)).get_data(as_text=True)
    assert '<a href="tel:+34911234567">911 23 45 67</a>' in text
    assert '<a href="tel:112">112</a>' in text and "¿Tiene alguno de estos?" in text


# --- honest timing ---------------------------------------------------------------------------------

def test_a_concern_at_night_says_when_the_team_will_see_it(fresh, session, page, clock):
    clock.move_to(NIGHT)  # 22:30 for the client in Chicago
    shown = fresh.get(tap(fresh, page, "worse").location).get_data(as_text=True)
    # 8:00 in New York, when the clinic's quiet hours end, is 7:00 in Chicago.
    assert "The team will see this tomorrow at 7:00\u202fAM." in shown
    assert "If it gets worse before then" in shown and 'href="tel:911"' in shown
    assert "We have let the team know." not in shown
    alerts = session.exec(select(Message).where(Message.kind == MessageKind.STAFF_ALERT)).all()
    assert alerts and all(a.due_at == datetime(2026, 6, 11, 12, 0, tzinfo=UTC) for a in alerts)


def test_a_concern_at_night_in_spanish(app, fresh, session, clinic, clock):
    row = enrolled(fresh, clinic[1], session, language="es", time_zone="America/New_York")
    clock.move_to(NIGHT + timedelta(hours=2))  # 1:30 in New York: the team sees it today at 8:00
    shown = fresh.get(tap(fresh, link(app, row), "worse").location).get_data(as_text=True)
    assert "El equipo lo verá hoy a las 8:00." in shown and "Si empeora antes" in shown


def test_after_quiet_hours_the_same_page_says_the_team_knows(fresh, page, clock):
    clock.move_to(NIGHT)
    after = tap(fresh, page, "worse").location
    clock.move_to(datetime(2026, 6, 11, 12, 30, tzinfo=UTC))
    shown = fresh.get(after).get_data(as_text=True)
    assert "We have let the team know." in shown and "The team will see this" not in shown


# --- opt-out you can undo, channel choice -------------------------------------------------------------

def test_opt_out_asks_first_then_stops_only_what_was_chosen(fresh, session, page, ana):
    opened = fresh.get(page).get_data(as_text=True)
    assert "You can also answer our texts" in opened
    confirm = fresh.get(f"{page}/optout")
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and all(f'value="{v}"' in text for v in ("sms", "email", "both"))
    session.expire_all()
    assert session.get(Client, ana.id).sms_opted_out_at is None  # nothing changes before confirming

    form = form_with(text, "both")
    response = fresh.post(form["action"], data={"stop": "sms", "form_token": form["form_token"]})
    assert response.status_code == 303
    session.expire_all()
    row = session.get(Client, ana.id)
    assert row.sms_opted_out_at and not row.email_opted_out_at
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "opted_out")).one()
    assert event.detail == {"via": "web", "channels": ["sms"]} and event.actor == "client"
    shown = fresh.get(response.location).get_data(as_text=True)
    assert "Texts are off." in shown and "Turn texts back on" in shown
    assert "answer our texts" not in shown
    assert 'value="worse"' in shown and 'value="numbness"' in shown  # the page itself still works


def test_opting_back_in_from_the_page(fresh, session, page, ana):
    form = form_with(fresh.get(f"{page}/optout").get_data(as_text=True), "both")
    fresh.post(form["action"], data={"stop": "both", "form_token": form["form_token"]})
    shown = fresh.get(page).get_data(as_text=True)
    assert "Texts are off." in shown and "Emails are off." in shown
    assert f'href="{page}/optout"' not in shown  # nothing left to stop
    back_on = tap(fresh, page, "sms", field="channel")
    # Texts back on from the page do not lift a STOP the carrier holds: the client is told.
    assert "reply START" in fresh.get(back_on.location).get_data(as_text=True)
    session.expire_all()
    row = session.get(Client, ana.id)
    assert row.sms_opted_out_at is None and row.sms_opted_in_at and row.email_opted_out_at
    events = session.exec(select(AuditEvent).where(AuditEvent.action.in_(("opted_out", "opted_in")))
                          .order_by(AuditEvent.id)).all()
    assert [(e.action, e.detail) for e in events] == [
        ("opted_out", {"via": "web", "channels": ["sms", "email"]}),
        ("opted_in", {"via": "web", "channels": ["sms"]})]


def test_opt_out_of_a_channel_the_client_does_not_have_is_refused(app, fresh, session, clinic):
    row = enrolled(fresh, clinic[1], session, email=None)
    page = link(app, row)
    text = fresh.get(f"{page}/optout").get_data(as_text=True)
    assert 'value="sms"' in text and 'value="email"' not in text and 'value="both"' not in text
    form = form_with(text, "sms")
    refused = fresh.post(form["action"], data={"stop": "email", "form_token": form["form_token"]})
    assert refused.status_code == 422
    assert count(session, AuditEvent, AuditEvent.action == "opted_out") == 0


def test_opting_out_of_everything_leaves_nothing_pending_for_the_client(fresh, session, page):
    form = form_with(fresh.get(f"{page}/optout").get_data(as_text=True), "both")
    fresh.post(form["action"], data={"stop": "both", "form_token": form["form_token"]})
    pending = session.exec(select(Message).where(Message.status == "pending")).all()
    assert pending == []


def test_stopping_texts_moves_the_plan_to_email_and_back(fresh, session, page):
    def pending(channel):
        session.expire_all()
        return session.exec(select(func.count()).select_from(Message).where(
            Message.status == "pending", Message.channel == channel)).one()

    form = form_with(fresh.get(f"{page}/optout").get_data(as_text=True), "sms")
    fresh.post(form["action"], data={"stop": "sms", "form_token": form["form_token"]})
    assert pending("sms") == 0 and pending("email") > 0
    tap(fresh, page, "sms", field="channel")
    assert pending("sms") > 0


def test_channel_choice_is_saved_audited_and_replans(fresh, session, page, ana):
    text = fresh.get(page).get_data(as_text=True)
    assert "Send my aftercare by:" in text
    tap(fresh, page, "email", field="choice")
    session.expire_all()
    assert session.get(Client, ana.id).channel_choice == "email"
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "channel_chosen")).one()
    assert event.detail == {"via": "web", "choice": "email"}
    pending = session.exec(select(Message).where(Message.status == "pending",
                                                 Message.kind != MessageKind.STAFF_ALERT)).all()
    assert pending and {m.channel for m in pending} == {"email"}


def test_channel_choice_is_offered_only_with_two_channels(app, fresh, session, clinic):
    row = enrolled(fresh, clinic[1], session, email=None)
    page = link(app, row)
    assert "Send my aftercare by:" not in fresh.get(page).get_data(as_text=True)
    form = form_with(fresh.get(page).get_data(as_text=True), "worse")
    refused = fresh.post(f"{page}/channels", data={"choice": "email", "form_token": form["form_token"]})
    assert refused.status_code == 422
    session.expire_all()
    assert session.get(Client, row.id).channel_choice is None


# --- the link's lifecycle ---------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BOTH_BACKENDS)
def test_an_erased_client_s_link_is_neutral_and_accepts_nothing(fresh, session, page, ana):
    opened = fresh.get(page).get_data(as_text=True)
    worse = form_with(opened, "worse")
    stop = form_with(fresh.get(f"{page}/optout").get_data(as_text=True), "both")
    erase_client(session, ana, NOW, actor="test")
    session.commit()

    gone = fresh.get(page)
    text = gone.get_data(as_text=True)
    assert gone.status_code == 410 and "This link is no longer active" in text
    assert "Back Walk Clinic" in text and "Ana" not in text and "erased" not in text
    assert fresh.get(f"{page}/appointment.ics").status_code == 410
    for action, data in ((worse["action"], {"answer": "worse", "form_token": worse["form_token"]}),
                         (f"{page}/checkin", {"red_flag": "fever", "form_token": worse["form_token"]}),
                         (stop["action"], {"stop": "both", "form_token": stop["form_token"]})):
        response = fresh.post(action, data=data)
        assert response.status_code == 410 and "Ana" not in response.get_data(as_text=True)
    assert count(session, CheckIn) == 0 and count(session, Escalation) == 0
    assert count(session, Message, Message.kind == MessageKind.STAFF_ALERT) == 0
    assert count(session, AuditEvent, AuditEvent.action == "opted_out") == 0


def test_links_sent_before_versions_still_work_until_revoked(app, fresh, session, page, ana):
    config = app.extensions["aftercare.config"]
    bare = URLSafeTimedSerializer(config.SECRET_KEY, salt=SALT).dumps(ana.id)  # an old text's link
    assert fresh.get(f"/c/{bare}").status_code == 200
    ana.link_version += 1
    session.add(ana)
    session.commit()
    for old in (f"/c/{bare}", page):
        response = fresh.get(old)
        assert response.status_code == 404 and "Ana" not in response.get_data(as_text=True)
    assert fresh.get(link(app, ana)).status_code == 200


@pytest.fixture
def staff(client, session, clinic):
    make_staff(session, clinic[0], "desk@clinic.example", role="clinician")
    assert log_in(client, "desk@clinic.example").status_code == 302
    return client


def revoke(staff, client_id):
    token = csrf_token(staff.get(f"/clients/{client_id}"))
    return staff.post(f"/clients/{client_id}/link", data={"csrf_token": token})


def test_staff_revoke_a_link_and_the_client_gets_a_new_one_that_works(
        app, fresh, session, clinic, page, ana, providers, staff):
    worse = form_with(fresh.get(page).get_data(as_text=True), "worse")
    response = revoke(staff, ana.id)
    assert response.status_code == 302
    assert "A new link is on its way by text." in staff.get(response.location).get_data(as_text=True)

    assert fresh.get(page).status_code == 404
    stale = fresh.post(worse["action"], data={"answer": "worse", "form_token": worse["form_token"]})
    assert stale.status_code == 404 and count(session, CheckIn) == 0
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "link_revoked")).one()
    assert event.actor.startswith("staff:") and event.detail == {"link_version": 1, "sent_by": ["sms"]}

    twilio, _ = providers
    twilio.reset()
    config, engine = app.extensions["aftercare.config"], app.extensions["aftercare.engine"]
    Dispatcher(config, engine, worker_id="test").drain()
    texts = [m.body for m in twilio.messages if m.to == PHONE]
    new_links = [line for text in texts if "new aftercare page link" in text
                 for line in text.splitlines() if "/c/" in line]
    assert len(new_links) == 1
    new = new_links[0].removeprefix(config.PUBLIC_BASE_URL)
    assert new != page and fresh.get(new).status_code == 200
    assert tap(fresh, new, "better").status_code == 303 and count(session, CheckIn) == 1


def test_a_revoked_link_of_a_client_without_texts_goes_by_email(app, session, clinic, staff):
    # Posted by the booking system, not through the staff member's browser: enrol's frozen clock
    # would set the session cookie's expiry in the past, and the test client would drop it.
    row = enrolled(app.test_client(), clinic[1], session, phone=None, sms_consent=False)
    revoke(staff, row.id)
    message = session.exec(select(Message).where(Message.kind == "page_link")).one()
    assert message.channel == "email" and message.recipient == EMAIL


def test_a_revocation_at_night_waits_for_the_morning(app, session, clinic, ana, staff, clock):
    clock.move_to(NIGHT)
    log_in(staff, "desk@clinic.example")  # the day's session has ended (idle timeout)
    revoke(staff, ana.id)
    message = session.exec(select(Message).where(Message.kind == "page_link")).one()
    assert message.due_at == datetime(2026, 6, 11, 13, 0, tzinfo=UTC)  # 8:00 in Chicago


def test_another_clinic_cannot_revoke_a_link(client, session, ana):
    other, _ = make_clinic(session, name="Elsewhere")
    make_staff(session, other, "them@elsewhere.example", role="owner")
    log_in(client, "them@elsewhere.example")
    token = csrf_token(client.get("/"))
    assert client.post(f"/clients/{ana.id}/link", data={"csrf_token": token}).status_code == 404
    session.expire_all()
    assert session.get(Client, ana.id).link_version == 0


def test_revoking_needs_a_csrf_token(session, ana, staff):
    assert staff.post(f"/clients/{ana.id}/link").status_code == 400
    session.expire_all()
    assert session.get(Client, ana.id).link_version == 0


@pytest.fixture
def log_text():
    """The production logging setup writing to a buffer; the test's own setup comes back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    logs.configure("INFO", stream=buffer)
    yield buffer.getvalue
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_link_s_token_is_never_logged(fresh, page, log_text):
    token = page.removeprefix("/c/")
    tap(fresh, page, "worse")
    fresh.get(f"{page}/appointment.ics")
    fresh.get(f"{page}/optout")
    fresh.post(f"{page}/checkin", data={"answer": "worse", "form_token": "forged"})
    logging.getLogger("anywhere").warning("opened https://x.example%s by hand", page)
    text = log_text()
    assert token not in text and token[:20] not in text
    paths = {json.loads(line).get("path") for line in text.splitlines()}
    assert {"/c/<redacted>", "/c/<redacted>/checkin", "/c/<redacted>/optout"} <= paths
    assert "https://x.example/c/<redacted> by hand" in text
