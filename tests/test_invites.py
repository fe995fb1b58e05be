"""Invitations and password resets by one-time email links (issue 15 item 3), and the one
password policy: at least 12 characters, none of the most common passwords, wherever a password
is set."""

import hashlib
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import select

from service.accounts import tokens
from service.accounts.passwords import COMMON as COMMON_LIST
from service.accounts.passwords import new_password_problem, verify_password
from service.models import AuditEvent, LoginAttempt, Message, StaffSession, StaffToken, StaffUser
from tests.conftest import BOTH_BACKENDS, make_clinic
from tests.helpers import NOW, at
from tests.web_helpers import PASSWORD, csrf_token, log_in, make_staff

NEW_PASSWORD = "a long walk on a quiet beach"
COMMON = "Password1234"  # 12 characters, and on the shipped list as password1234


def logged_in(app, email: str, password: str = PASSWORD):
    browser = app.test_client()
    assert log_in(browser, email, password).status_code == 302
    return browser


def post(browser, path: str, page: str, **data):
    return browser.post(path, data={**data, "csrf_token": csrf_token(browser.get(page))})


def path_of(link: str) -> str:
    return urlsplit(link).path


def actions(session) -> list[str]:
    session.expire_all()
    return [event.action for event in session.exec(select(AuditEvent).order_by(AuditEvent.id))]


def staff(session, email: str) -> StaffUser:
    session.expire_all()
    return session.exec(select(StaffUser).where(StaffUser.email == email)).one()


def set_password(app, path: str, password: str = NEW_PASSWORD):
    """The link opened in a fresh browser, the form posted."""
    browser = app.test_client()
    page = browser.get(path)
    if page.status_code != 200:
        return browser, page
    return browser, browser.post(path, data={"password": password, "csrf_token": csrf_token(page)})


# --- the password policy -----------------------------------------------------------------------

def test_the_shipped_list_refuses_common_passwords_in_any_case():
    assert new_password_problem("password1234") and new_password_problem("PASSWORD1234")
    assert new_password_problem("1qaz2wsx3edc")  # the keyboard walk, as long as the minimum
    assert new_password_problem("correct horse battery") is None
    assert "12 characters" in new_password_problem("short")
    assert len(COMMON_LIST.read_text().splitlines()) > 10_000


# --- invitations -------------------------------------------------------------------------------

def test_an_invitation_goes_by_email_through_the_outbox_and_its_link_works_once(
        app, session, clinic, providers, dispatcher):
    _, smtp = providers
    with at(NOW):
        owner = logged_in(app, make_staff(session, clinic[0], "owner@clinic.example").email)
        answer = post(owner, "/settings/staff/invite", "/settings", name="Noor Haddad",
                      email="Noor@Clinic.example", role="front_desk")
        assert answer.status_code == 302
        [message] = session.exec(select(Message)).all()
        assert (message.kind, message.channel, message.client_id, message.clinic_id,
                message.priority, message.recipient) == (
            "staff_invite", "email", None, clinic[0].id, 0, "noor@clinic.example")
        dispatcher.drain()
    [email] = smtp.wait_for(1)
    assert email.rcpt_tos == ["noor@clinic.example"] and "invites you" in email.subject
    text = email.message.get_body(("plain",)).get_content()
    [link] = re.findall(r"https?://\S+/invite/\S+", text)
    token = link.rsplit("/", 1)[1]
    [row] = session.exec(select(StaffToken)).all()
    assert row.id == hashlib.sha256(token.encode()).hexdigest() and row.purpose == "invite"
    assert row.expires_at - row.created_at == timedelta(days=7)

    newcomer = staff(session, "noor@clinic.example")
    assert newcomer.role == "front_desk" and log_in(app.test_client(), newcomer.email,
                                                    NEW_PASSWORD).status_code == 401
    with at(NOW + timedelta(hours=1)):
        browser = app.test_client()
        assert browser.get(path_of(link)).status_code == 200  # opening it (a mail scanner) uses nothing
        assert browser.get(path_of(link)).status_code == 200
        _, weak = set_password(app, path_of(link), COMMON)
        assert weak.status_code == 422 and "most common passwords" in weak.get_data(as_text=True)
        browser, accepted = set_password(app, path_of(link))
        assert accepted.status_code == 302 and accepted.headers["Location"] == "/"
        assert browser.get("/").status_code == 200  # logged in
        assert verify_password(staff(session, newcomer.email).password_hash, NEW_PASSWORD)
        again, second = set_password(app, path_of(link), "another quiet long walk")
        assert second.status_code == 410 and "no longer works" in second.get_data(as_text=True)
    assert verify_password(staff(session, newcomer.email).password_hash, NEW_PASSWORD)
    assert "staff_invited" in actions(session) and actions(session)[-1] == "invite_accepted"


def test_an_expired_invitation_is_refused_and_a_new_one_replaces_the_old(
        app, runner, session, clinic):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    with at(NOW):
        result = runner.invoke(args=["invite-staff", str(clinic[0].id), "Sam@Clinic.example",
                                     "--name", "Sam", "--role", "clinician"])
        assert result.exit_code == 0, result.output
        [link] = re.findall(r"\S+/invite/\S+", result.output)
    [message] = session.exec(select(Message)).all()
    assert message.kind == "staff_invite" and message.params["link"] == link
    sam = staff(session, "sam@clinic.example")
    before = sam.password_hash
    with at(NOW + timedelta(days=7, minutes=1)):
        _, late = set_password(app, path_of(link))
        assert late.status_code == 410
        assert staff(session, sam.email).password_hash == before
        # The owner sends a new one: the old link stays dead, the new one works.
        with_owner = logged_in(app, owner.email)
        assert post(with_owner, f"/settings/staff/{sam.id}/invite", "/settings").status_code == 302
        newest = session.exec(select(Message).order_by(Message.id.desc())).first()
        _, old = set_password(app, path_of(link))
        assert old.status_code == 410
        _, fresh = set_password(app, path_of(newest.params["link"]))
        assert fresh.status_code == 302
    assert "staff_invite_resent" in actions(session)


def test_inviting_an_email_of_another_clinic_says_nothing_and_adds_nothing(app, session, clinic):
    other, _ = make_clinic(session, name="Elsewhere", sms_sender="+12025550999")
    make_staff(session, other, "taken@elsewhere.example")
    owner = logged_in(app, make_staff(session, clinic[0], "owner@clinic.example").email)
    answer = post(owner, "/settings/staff/invite", "/settings", name="X",
                  email="taken@elsewhere.example", role="clinician")
    assert answer.status_code == 302
    assert session.exec(select(Message)).all() == [] and staff(
        session, "taken@elsewhere.example").clinic_id == other.id
    bad = post(owner, "/settings/staff/invite", "/settings", name="X", email="nobody",
               role="clinician")
    assert bad.status_code == 422 and "not an email address" in bad.get_data(as_text=True)


def test_only_owners_invite(app, session, clinic):
    make_staff(session, clinic[0], "doc@clinic.example", role="clinician")
    doc = logged_in(app, "doc@clinic.example")
    token = csrf_token(doc.get("/"))
    answer = doc.post("/settings/staff/invite", data={"csrf_token": token, "name": "X",
                                                      "email": "x@clinic.example", "role": "owner"})
    assert answer.status_code == 403 and session.exec(select(Message)).all() == []


# --- password reset ----------------------------------------------------------------------------

def ask_reset(app, email: str, address: str = "198.51.100.7"):
    browser = app.test_client()
    page = browser.get("/reset-password")
    return browser.post("/reset-password", data={"email": email, "csrf_token": csrf_token(page)},
                        environ_base={"REMOTE_ADDR": address})


def resets(session) -> list[Message]:
    session.expire_all()
    return session.exec(select(Message).where(Message.kind == "password_reset")).all()


def test_a_reset_answers_the_same_for_a_known_an_unknown_and_a_deactivated_email(
        app, session, clinic):
    make_staff(session, clinic[0], "kim@clinic.example")
    gone = make_staff(session, clinic[0], "gone@clinic.example")
    gone.active = False
    session.add(gone)
    session.commit()
    answers = [ask_reset(app, email, f"198.51.100.{n}") for n, email in enumerate(
        ["Kim@Clinic.example", "nobody@clinic.example", "gone@clinic.example"])]
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.get_data(as_text=True) for answer in answers}) == 1
    assert "If that address has an account" in answers[0].get_data(as_text=True)
    [message] = resets(session)
    assert (message.recipient, message.channel, message.client_id, message.priority) == (
        "kim@clinic.example", "email", None, 0)
    assert ask_reset(app, "not an email" * 30).status_code == 422


@pytest.mark.parametrize("backend", BOTH_BACKENDS)  # the conditional UPDATE ... RETURNING
def test_a_reset_link_works_once_ends_every_session_and_expires(app, session, clinic):
    kim = make_staff(session, clinic[0], "kim@clinic.example")
    with at(NOW):
        elsewhere = logged_in(app, kim.email)
        assert elsewhere.get("/").status_code == 200
        ask_reset(app, kim.email)
        [message] = resets(session)
        link = path_of(message.params["link"])
    with at(NOW + timedelta(minutes=29)):
        _, weak = set_password(app, link, COMMON)
        assert weak.status_code == 422
        _, done = set_password(app, link)
        assert done.status_code == 302 and done.headers["Location"] == "/login"
        assert elsewhere.get("/").status_code == 302  # that session ended
        assert log_in(app.test_client(), kim.email, NEW_PASSWORD).status_code == 302
        _, twice = set_password(app, link, "yet another long phrase")
        assert twice.status_code == 410
        assert actions(session)[-2:] == ["password_reset", "staff_login"]
        ask_reset(app, kim.email)
        later = path_of(resets(session)[-1].params["link"])
    with at(NOW + timedelta(minutes=29 + 31)):
        _, late = set_password(app, later, "yet another long phrase")
        assert late.status_code == 410
    assert verify_password(staff(session, kim.email).password_hash, NEW_PASSWORD)


def test_reset_requests_cannot_flood_an_inbox(app, session, clinic):
    make_staff(session, clinic[0], "kim@clinic.example")
    with at(NOW):
        # From many addresses: the inbox gets RESETS_PER_HOUR links in an hour, the same answer.
        answers = [ask_reset(app, "kim@clinic.example", f"198.51.100.{n}") for n in range(5)]
        assert {answer.status_code for answer in answers} == {200}
        assert len(resets(session)) == tokens.RESETS_PER_HOUR
        # From one address: the login throttle's growing delays, per address and email.
        for _ in range(5):  # PAIR_FREE
            assert ask_reset(app, "kim@clinic.example", "198.51.100.200").status_code == 200
        assert ask_reset(app, "kim@clinic.example", "198.51.100.200").status_code == 429
    with at(NOW + timedelta(hours=1, minutes=1)):
        assert ask_reset(app, "kim@clinic.example", "198.51.100.1").status_code == 200
        assert len(resets(session)) == tokens.RESETS_PER_HOUR + 1
    # Kept apart from the staff member's own login failures.
    assert not session.exec(select(LoginAttempt).where(
        LoginAttempt.email == "kim@clinic.example")).all()


# --- one policy everywhere a password is set ---------------------------------------------------

def test_a_common_password_is_refused_everywhere_a_password_is_set(app, runner, session, clinic):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    browser = logged_in(app, owner.email)
    added = post(browser, "/settings/staff", "/settings", name="Desk", email="desk@clinic.example",
                 password=COMMON, role="front_desk")
    assert added.status_code == 302
    assert "most common passwords" in browser.get("/settings").get_data(as_text=True)
    changed = post(browser, "/account/password", "/account/password",
                   current_password=PASSWORD, new_password=COMMON)
    assert changed.status_code == 422 and "most common passwords" in changed.get_data(as_text=True)
    created = runner.invoke(args=["create-user", str(clinic[0].id), "cli@clinic.example",
                                  "--name", "C", "--password", COMMON])
    assert created.exit_code == 2 and "most common passwords" in created.output
    assert [user.email for user in session.exec(select(StaffUser))] == [owner.email]
    assert verify_password(staff(session, owner.email).password_hash, PASSWORD)
    # (an invitation and a reset: in the tests above, each refused with 422)


@pytest.mark.parametrize("path", ["/invite/nonsense", "/reset-password/" + "x" * 300])
def test_an_unknown_link_is_a_clear_page(client, path):
    answer = client.get(path)
    assert answer.status_code == 410 and "no longer works" in answer.get_data(as_text=True)


# --- the administrator's commands, and what the purge clears -----------------------------------

def test_set_password_from_the_cli_ends_every_session(app, runner, session, clinic):
    kim = make_staff(session, clinic[0], "kim@clinic.example")
    browser = logged_in(app, kim.email)
    common = runner.invoke(args=["set-password", kim.email, "--password", COMMON])
    assert common.exit_code == 2 and "most common passwords" in common.output
    assert browser.get("/").status_code == 200
    result = runner.invoke(args=["set-password", "Kim@Clinic.example", "--password", NEW_PASSWORD])
    assert result.exit_code == 0 and "1 session(s) ended" in result.output, result.output
    assert browser.get("/").status_code == 302
    assert log_in(app.test_client(), kim.email, NEW_PASSWORD).status_code == 302
    nobody = runner.invoke(args=["set-password", "nobody@clinic.example", "--password", NEW_PASSWORD])
    assert nobody.exit_code == 1 and "no staff login" in nobody.output
    assert "password_set" in actions(session)


def test_deactivate_and_reactivate_from_the_cli(app, runner, session, clinic):
    kim = make_staff(session, clinic[0], "kim@clinic.example")
    browser = logged_in(app, kim.email)
    result = runner.invoke(args=["deactivate-user", kim.email])
    assert result.exit_code == 0 and "1 session(s) ended" in result.output, result.output
    assert browser.get("/").status_code == 302
    assert log_in(app.test_client(), kim.email).status_code == 401
    assert runner.invoke(args=["reactivate-user", kim.email]).exit_code == 0
    assert log_in(app.test_client(), kim.email).status_code == 302
    trail = actions(session)
    assert trail.index("staff_deactivated") < trail.index("staff_activated")


def test_the_purge_clears_dead_sessions_old_login_failures_and_expired_links(
        app, runner, session, clinic):
    kim = make_staff(session, clinic[0], "kim@clinic.example")
    with at(NOW):
        logged_in(app, kim.email)
        log_in(app.test_client(), kim.email, "not the password")
        ask_reset(app, kim.email)
    with at(NOW + timedelta(days=100)):
        logged_in(app, kim.email)  # in use: kept
        result = runner.invoke(args=["purge", "--older-than", "90"])
    assert result.exit_code == 0, result.output
    assert "1 staff_sessions, 2 login_attempts, 1 staff_links" in result.output
    session.expire_all()
    assert [row.last_seen_at for row in session.exec(select(StaffSession))] == [
        NOW + timedelta(days=100)]
    assert session.exec(select(LoginAttempt)).all() == session.exec(select(StaffToken)).all() == []


def test_inviting_wants_the_password_again_and_then_returns_to_the_settings_page(
        app, session, clinic):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    with at(NOW) as clock:
        browser = logged_in(app, owner.email)
        clock.tick(timedelta(minutes=11))
        asked = post(browser, "/settings/staff/invite", "/settings", name="Noor",
                     email="noor@clinic.example", role="clinician")
        assert asked.headers["Location"] == "/confirm-password?next=/settings"
        assert session.exec(select(Message)).all() == []  # nothing sent before the password
        page = browser.get(asked.headers["Location"])
        back = browser.post(asked.headers["Location"],
                            data={"password": PASSWORD, "csrf_token": csrf_token(page)})
        assert back.headers["Location"] == "/settings"  # the page the form was on
        assert post(browser, "/settings/staff/invite", "/settings", name="Noor",
                    email="noor@clinic.example", role="clinician").status_code == 302
    [message] = session.exec(select(Message)).all()
    assert message.recipient == "noor@clinic.example"
