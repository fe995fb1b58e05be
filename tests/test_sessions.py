"""Staff sessions are rows (issue 15 item 1): the cookie carries only a random token, and logout,
a password change, deactivation, an owner's "sign out everywhere", the clinic's idle timeout and
the absolute lifetime end them at once, whatever cookie anyone kept."""

from datetime import timedelta

from freezegun import freeze_time
from sqlmodel import select

from service.accounts.passwords import verify_password
from service.models import AuditEvent, StaffSession, StaffUser
from tests.helpers import NOW
from tests.web_helpers import PASSWORD, csrf_token, log_in, make_staff

CLIENT_PAGE = "/settings"  # any staff page


def logged_in(app, email: str):
    client = app.test_client()
    assert log_in(client, email).status_code == 302
    return client


def cookie_of(client) -> str:
    return client.get_cookie("session").value


def replay(app, cookie: str):
    """A fresh browser (another address) holding a cookie captured earlier."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other.get(CLIENT_PAGE, environ_base={"REMOTE_ADDR": "203.0.113.9"})


def post(client, path: str, page: str = "/settings", **data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client.get(page))})


def is_login_page(response, next_path: str = CLIENT_PAGE) -> bool:
    return (response.status_code == 302
            and response.headers["Location"].startswith("/login?next=" + next_path.replace("/", "%2F")))


def test_the_cookie_names_no_user_and_the_row_is_a_digest(app, session, clinic):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    client = logged_in(app, owner.email)
    with client.session_transaction() as flask_session:
        assert set(flask_session) - {"csrf_token"} == {"sid"}
        token = flask_session["sid"]
    rows = session.exec(select(StaffSession)).all()
    assert len(rows) == 1 and rows[0].staff_id == owner.id and token not in rows[0].id
    assert client.get(CLIENT_PAGE).status_code == 200


def test_an_old_cookie_after_logout_opens_nothing(app, session, clinic):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    client = logged_in(app, owner.email)
    captured = cookie_of(client)
    assert replay(app, captured).status_code == 200  # the stolen cookie works while logged in
    post(client, "/logout")
    assert is_login_page(replay(app, captured))
    assert session.exec(select(StaffSession)).one().ended_at is not None
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "staff_logout")).one()


def test_an_idle_session_ends_at_the_clinics_timeout(app, session, clinic):
    clinic[0].idle_timeout_minutes = 15
    session.add(clinic[0])
    session.commit()
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    with freeze_time(NOW) as clock:
        client = logged_in(app, owner.email)
        clock.tick(timedelta(minutes=14))
        assert client.get(CLIENT_PAGE).status_code == 200  # used: the idle clock restarts
        clock.tick(timedelta(minutes=14))
        assert client.get(CLIENT_PAGE).status_code == 200
        clock.tick(timedelta(minutes=16))
        assert is_login_page(client.get(CLIENT_PAGE))
        clock.tick(timedelta(seconds=1))
        assert is_login_page(client.get(CLIENT_PAGE))  # ended, not revived


def test_last_seen_is_written_at_most_once_a_minute(app, session, clinic):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    with freeze_time(NOW) as clock:
        client = logged_in(app, owner.email)
        clock.tick(timedelta(seconds=30))
        client.get(CLIENT_PAGE)
        session.expire_all()
        assert session.exec(select(StaffSession)).one().last_seen_at == NOW
        clock.tick(timedelta(seconds=31))
        client.get(CLIENT_PAGE)
        session.expire_all()
        assert session.exec(select(StaffSession)).one().last_seen_at == NOW + timedelta(seconds=61)


def test_a_session_in_use_ends_after_its_lifetime(app, session, clinic):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    with freeze_time(NOW) as clock:
        client = logged_in(app, owner.email)
        for _ in range(12 * 4 - 1):  # used every 15 minutes, never idle
            clock.tick(timedelta(minutes=15))
            assert client.get(CLIENT_PAGE).status_code == 200
        clock.tick(timedelta(minutes=15, seconds=1))
        assert is_login_page(client.get(CLIENT_PAGE))


def test_a_password_change_ends_the_other_sessions(app, session, clinic):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    laptop, phone = logged_in(app, owner.email), logged_in(app, owner.email)
    refused = post(laptop, "/account/password", "/account/password",
                   current_password="wrong password!", new_password="a much longer passphrase")
    assert refused.status_code == 422 and phone.get(CLIENT_PAGE).status_code == 200
    short = post(laptop, "/account/password", "/account/password",
                 current_password=PASSWORD, new_password="short")
    assert short.status_code == 422 and "at least 12" in short.get_data(as_text=True)
    done = post(laptop, "/account/password", "/account/password",
                current_password=PASSWORD, new_password="a much longer passphrase")
    assert done.status_code == 302
    assert laptop.get(CLIENT_PAGE).status_code == 200  # this one goes on
    assert is_login_page(phone.get(CLIENT_PAGE))
    session.expire_all()
    assert verify_password(session.get(StaffUser, owner.id).password_hash, "a much longer passphrase")
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "password_changed")).one()
