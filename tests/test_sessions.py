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


def test_deactivating_ends_a_live_session_and_blocks_login(app, session, clinic):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    staff = make_staff(session, clinic[0], "staff@clinic.example")
    boss, theirs = logged_in(app, owner.email), logged_in(app, staff.email)
    assert post(boss, f"/settings/staff/{staff.id}/active").status_code == 302
    assert is_login_page(theirs.get(CLIENT_PAGE))
    wrong = log_in(app.test_client(), staff.email, "not the password")
    refused = log_in(app.test_client(), staff.email)
    assert refused.status_code == wrong.status_code == 401
    assert "do not match" in refused.get_data(as_text=True)
    assert post(boss, f"/settings/staff/{owner.id}/active").status_code == 302  # not themselves
    session.expire_all()
    assert session.get(StaffUser, owner.id).active and not session.get(StaffUser, staff.id).active
    post(boss, f"/settings/staff/{staff.id}/active")  # reactivated
    assert logged_in(app, staff.email).get(CLIENT_PAGE).status_code == 200
    actions = session.exec(select(AuditEvent.action).where(AuditEvent.actor == f"staff:{owner.id}")).all()
    assert {"staff_deactivated", "staff_activated"} <= set(actions)


def test_an_owner_signs_a_staff_member_out_everywhere(app, session, clinic):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    staff = make_staff(session, clinic[0], "staff@clinic.example")
    boss, laptop, phone = (logged_in(app, email) for email in (owner.email, staff.email, staff.email))
    assert "Sign out everywhere" in boss.get("/settings").get_data(as_text=True)
    assert post(boss, f"/settings/staff/{staff.id}/sign-out").status_code == 302
    assert is_login_page(laptop.get(CLIENT_PAGE)) and is_login_page(phone.get(CLIENT_PAGE))
    assert boss.get(CLIENT_PAGE).status_code == 200
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "staff_signed_out")).one()


def test_export_wants_the_password_again_after_ten_minutes(app, session, clinic):
    from tests.helpers import enrol
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    with freeze_time(NOW) as clock:
        client_id = enrol(app.test_client(), clinic[1])["client_id"]
        browser = logged_in(app, owner.email)
        export = f"/clients/{client_id}/export.json"
        assert browser.get(export).status_code == 200  # just logged in
        clock.tick(timedelta(minutes=11))
        asked = browser.get(export)
        assert asked.status_code == 302 and asked.headers["Location"].startswith("/confirm-password")
        page = browser.get(asked.headers["Location"])
        wrong = browser.post(asked.headers["Location"],
                             data={"password": "not it at all", "csrf_token": csrf_token(page)})
        assert wrong.status_code == 401
        back = browser.post(asked.headers["Location"],
                            data={"password": PASSWORD, "csrf_token": csrf_token(page)})
        assert back.headers["Location"] == export
        assert browser.get(export).status_code == 200
        elsewhere = browser.get("/confirm-password?next=https://elsewhere.example/")
        done = browser.post("/confirm-password?next=https://elsewhere.example/",
                            data={"password": PASSWORD, "csrf_token": csrf_token(elsewhere)})
        assert done.headers["Location"] == "/"


def test_the_idle_timeout_is_an_audited_setting(app, session, clinic):
    owner = make_staff(session, clinic[0], "owner@clinic.example")
    browser = logged_in(app, owner.email)
    assert 'name="idle_timeout_minutes"' in browser.get("/settings").get_data(as_text=True)
    form = {"time_zone": "America/New_York", "quiet_start": "21:00", "quiet_end": "08:00",
            "on_call_phones": "", "on_call_emails": "", "renotify_minutes": "30",
            "renotify_max": "3", "weekly_visits": "3", "maintenance_weeks": "3",
            "hydration_after": "2", "heat_after": "5", "checkin_after": "24",
            "followup_after": "72", "reminder_before": "24", "section": "security"}
    assert post(browser, "/settings", **form, idle_timeout_minutes="4").status_code == 422
    assert post(browser, "/settings", **form, idle_timeout_minutes="90").status_code == 302
    session.expire_all()
    assert session.get(type(clinic[0]), clinic[0].id).idle_timeout_minutes == 90
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "settings_changed")).one()
