"""A second factor for staff (issue 15 item 2): TOTP enrolment with a QR code and recovery codes,
the login's code step (no replay, throttled, short-lived, `next` kept), a clinic that requires
it, turning it off, and an owner's reset for a lost phone."""

import re
from datetime import timedelta

import pyotp
import pytest
from freezegun import freeze_time
from sqlmodel import select

from service.messaging.links import client_page_url
from service.models import AuditEvent, Client, Clinic, RecoveryCode, StaffSession, StaffUser
from tests import helpers
from tests.conftest import BOTH_BACKENDS, make_clinic
from tests.helpers import NOW
from tests.web_helpers import (
    PASSWORD,
    STEP,
    code_step,
    csrf_token,
    enrol,
    enrolled,
    log_in,
    make_staff,
    password_step,
)


def post(client, path: str, page: str, **data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client.get(page))})


def actions(session, action: str) -> list[AuditEvent]:
    return session.exec(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_enrol_then_log_in_with_a_code_and_next_survives(app, session, clinic):
    with freeze_time(NOW) as clock:
        web = app.test_client()
        log_in(web, make_staff(session, clinic[0], "nurse@clinic.example", "clinician").email)
        page = web.get("/account/two-factor").get_data(as_text=True)
        assert 'src="data:image/svg+xml' in page  # the QR code, rendered here, no script
        key = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page).group(1)
        with web.session_transaction() as flask_session:  # a readable cookie: only a nonce
            assert key not in repr(dict(flask_session))
        assert key in web.get("/account/two-factor").get_data(as_text=True)  # the same again
        assert enrol(web)[0] == key

        user, secret, codes = enrolled(app, session, clinic[0])
        assert user.totp_secret == secret and len(codes) == 10 == len(set(codes))
        stored = session.exec(select(RecoveryCode).where(RecoveryCode.staff_id == user.id)).all()
        assert len(stored) == 10 and not {row.code_hash for row in stored} & set(codes)
        assert actions(session, "totp_enabled")[-1].actor == f"staff:{user.id}"
        sessions_before = len(session.exec(select(StaffSession)).all())

        clock.tick(STEP)
        web, location = password_step(app, user.email)
        assert web.get("/settings").status_code == 302  # the password alone opened nothing
        assert len(session.exec(select(StaffSession)).all()) == sessions_before
        done = code_step(web, location, pyotp.TOTP(secret).now())
        assert done.status_code == 302 and done.headers["Location"] == "/settings"
        assert web.get("/settings").status_code == 200
        assert actions(session, "staff_login")[-1].detail == {"factor": "totp"}


@pytest.mark.parametrize("backend", BOTH_BACKENDS)  # the step is taken by a conditional UPDATE
def test_the_same_code_is_refused_a_second_time(app, session, clinic):
    with freeze_time(NOW) as clock:
        user, secret, _ = enrolled(app, session, clinic[0])
        web, location = password_step(app, user.email)
        assert code_step(web, location, pyotp.TOTP(secret).now()).status_code == 401  # enrolment's
        clock.tick(STEP)
        code = pyotp.TOTP(secret).now()
        web, location = password_step(app, user.email)
        assert code_step(web, location, code).status_code == 302
        again, location = password_step(app, user.email)
        refused = code_step(again, location, code)
        assert refused.status_code == 401 and "already used" in refused.get_data(as_text=True)
        assert again.get("/settings").status_code == 302
        # nor the code of the step just before, still in the window (its step is not later)
        assert code_step(again, location, pyotp.TOTP(secret).at(NOW + STEP - STEP)).status_code == 401
        clock.tick(STEP)
        assert code_step(again, location, pyotp.TOTP(secret).now()).status_code == 302


def test_wrong_codes_are_throttled_like_wrong_passwords(app, session, clinic):
    with freeze_time(NOW) as clock:
        user, secret, _ = enrolled(app, session, clinic[0])
        clock.tick(STEP)
        web, location = password_step(app, user.email)
        right = pyotp.TOTP(secret).now()
        wrong = f"{(int(right) + 1) % 1_000_000:06d}"
        statuses = [code_step(web, location, wrong).status_code for _ in range(7)]
        assert statuses == [401] * 5 + [429] * 2
        assert code_step(web, location, right).status_code == 429  # even the right one, for now
        assert len(actions(session, "totp_failed")) == 5
        assert actions(session, "totp_failed")[0].detail == {"staff_id": user.id}
        clock.tick(timedelta(seconds=3))
        assert code_step(web, location, right).status_code == 302


def test_a_recovery_code_works_once(app, session, clinic):
    with freeze_time(NOW):
        user, _, codes = enrolled(app, session, clinic[0])
        web, location = password_step(app, user.email)
        assert code_step(web, location, codes[0]).status_code == 302
        assert actions(session, "staff_login")[-1].detail == {"factor": "recovery_code"}
        again, location = password_step(app, user.email)
        assert code_step(again, location, codes[0]).status_code == 401
        # as typed from paper: capitals, spaces, no dash
        typed = " ".join(codes[1].replace("-", "").upper())
        assert code_step(again, location, typed).status_code == 302
        session.expire_all()
        used = session.exec(select(RecoveryCode).where(RecoveryCode.used_at.is_not(None))).all()
        assert len(used) == 2


def test_a_pending_login_expires_after_five_minutes_and_bad_input_is_named(app, session, clinic):
    with freeze_time(NOW) as clock:
        user, secret, _ = enrolled(app, session, clinic[0])
        web, location = password_step(app, user.email)
        bad = code_step(web, location, "")
        assert bad.status_code == 422 and "Code: This field is required." in bad.get_data(as_text=True)
        too_long = code_step(web, location, "1" * 21)
        assert too_long.status_code == 422 and "Code:" in too_long.get_data(as_text=True)
        token = csrf_token(web.get(location))  # the page open, the phone not found in time
        clock.tick(timedelta(minutes=5, seconds=1))
        late = web.post(location, data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
        assert late.status_code == 302 and late.headers["Location"] == "/login?next=/settings"
        assert web.get("/settings").status_code == 302
        assert "waited too long" in web.get("/login").get_data(as_text=True)
        assert web.get(location).headers["Location"].startswith("/login")


def test_a_wrong_enrolment_code_saves_nothing(app, session, clinic):
    user = make_staff(session, clinic[0], "owner@clinic.example")
    web = app.test_client()
    log_in(web, user.email)
    refused = post(web, "/account/two-factor", "/account/two-factor", code="000000x")
    assert refused.status_code == 422 and "not right" in refused.get_data(as_text=True)
    session.expire_all()
    assert session.get(StaffUser, user.id).totp_secret is None
    assert not session.exec(select(RecoveryCode)).all()


def test_a_clinic_that_requires_it_sends_staff_to_enrol_first(app, session, clinic):
    here = clinic[0]
    owner = make_staff(session, here, "owner@clinic.example")
    nurse = make_staff(session, here, "nurse@clinic.example", role="clinician")
    with freeze_time(NOW) as clock:
        web = app.test_client()
        log_in(web, owner.email)
        form = {"time_zone": "America/New_York", "quiet_start": "21:00", "quiet_end": "08:00",
                "on_call_phones": "", "on_call_emails": "", "renotify_minutes": "30",
                "renotify_max": "3", "weekly_visits": "3", "maintenance_weeks": "3",
                "hydration_after": "2", "heat_after": "5", "checkin_after": "24",
                "followup_after": "72", "reminder_before": "24", "idle_timeout_minutes": "30",
                "section": "security"}
        assert 'name="require_totp"' in web.get("/settings").get_data(as_text=True)
        assert post(web, "/settings", "/settings", **form, require_totp="on").status_code == 302
        assert actions(session, "totp_requirement_changed")[0].detail == {"required": True}
        assert web.get("/settings").headers["Location"] == \
            "/account/two-factor?next=/settings"  # the owner too, at once

        nurse_web = app.test_client()
        assert log_in(nurse_web, nurse.email).status_code == 302  # a session, but gated
        for path in ("/", "/settings", "/account/password", f"/clients/{owner.id}"):
            assert nurse_web.get(path).headers["Location"].startswith("/account/two-factor")
        changed = post(nurse_web, "/account/password", "/account/two-factor",
                       current_password=PASSWORD, new_password="another long passphrase")
        assert changed.headers["Location"] == "/account/two-factor"  # nor a POST
        assert "requires a second factor" in nurse_web.get("/account/two-factor").get_data(as_text=True)
        enrol(nurse_web)
        assert nurse_web.get("/").status_code == 200

        off = post(nurse_web, "/account/two-factor/off", "/account/two-factor",
                   password=PASSWORD, code="123456")
        assert off.status_code == 422 and "requires" in off.get_data(as_text=True)
        session.expire_all()
        assert session.get(StaffUser, nurse.id).totp_secret is not None
        clock.tick(STEP)
        password_step(app, nurse.email)  # from now on, a code at login


def test_turning_it_off_needs_the_password_and_a_code(app, session, clinic):
    with freeze_time(NOW) as clock:
        user, secret, _ = enrolled(app, session, clinic[0])
        clock.tick(STEP)
        web, location = password_step(app, user.email)
        code_step(web, location, pyotp.TOTP(secret).now())
        clock.tick(STEP)
        code = pyotp.TOTP(secret).now()
        wrong = post(web, "/account/two-factor/off", "/account/two-factor",
                     password="not the password", code=code)
        assert wrong.status_code == 422 and "Password" in wrong.get_data(as_text=True)
        assert post(web, "/account/two-factor/off", "/account/two-factor",
                    password=PASSWORD, code=code).status_code == 302
        session.expire_all()
        assert session.get(StaffUser, user.id).totp_secret is None
        assert not session.exec(select(RecoveryCode)).all()
        assert actions(session, "totp_disabled")[0].actor == f"staff:{user.id}"
        assert log_in(app.test_client(), user.email).headers["Location"] == "/"


def test_an_owner_resets_a_lost_phone(app, session, clinic):
    here = clinic[0]
    with freeze_time(NOW) as clock:
        nurse, secret, _ = enrolled(app, session, here, "nurse@clinic.example", role="clinician")
        clock.tick(STEP)  # the enrolment's code step is spent
        lost_phone, location = password_step(app, nurse.email, "/")  # a session on the lost phone
        assert code_step(lost_phone, location, pyotp.TOTP(secret).now()).status_code == 302
        assert lost_phone.get("/").status_code == 200
        owner = make_staff(session, here, "owner@clinic.example")
        web = app.test_client()
        log_in(web, owner.email)
        assert f"/settings/staff/{nurse.id}/two-factor/reset" in web.get("/settings").get_data(as_text=True)
        elsewhere = make_staff(session, make_clinic(session, "Other")[0], "other@else.example")
        assert post(web, f"/settings/staff/{elsewhere.id}/two-factor/reset",
                    "/settings").status_code == 404
        assert post(web, f"/settings/staff/{nurse.id}/two-factor/reset",
                    "/settings").status_code == 302
        session.expire_all()
        assert session.get(StaffUser, nurse.id).totp_secret is None
        assert not session.exec(select(RecoveryCode)).all()
        reset = actions(session, "totp_reset")[0]
        assert reset.actor == f"staff:{owner.id}" and reset.detail == {"staff_id": nurse.id}
        assert log_in(app.test_client(), nurse.email).headers["Location"] == "/"
        assert lost_phone.get("/").status_code == 302  # its session ended with the factor


def test_an_owner_reset_wants_a_recent_password(app, session, clinic):
    here = clinic[0]
    with freeze_time(NOW) as clock:
        nurse, _, _ = enrolled(app, session, here, "nurse@clinic.example", role="clinician")
        owner = make_staff(session, here, "owner@clinic.example")
        web = app.test_client()
        log_in(web, owner.email)
        clock.tick(timedelta(minutes=11))
        asked = post(web, f"/settings/staff/{nurse.id}/two-factor/reset", "/settings")
        assert asked.headers["Location"].startswith("/confirm-password")
        session.expire_all()
        assert session.get(StaffUser, nurse.id).totp_secret is not None
        assert session.get(Clinic, here.id).require_totp is False


def test_the_requirement_gates_staff_pages_only(app, session, clinic):
    """A clinic requires a second factor and the nurse has none yet: her staff pages wait for
    enrolment, but a client's page opened in the same browser still opens, and the API and a
    health check answer as they would without her cookie."""
    here, key = clinic
    here.require_totp = True
    session.add(here)
    session.commit()
    nurse = make_staff(session, here, "nurse@clinic.example", role="clinician")
    ana = session.get(Client, helpers.enrol(app.test_client(), key)["client_id"])
    page = client_page_url(app.extensions["aftercare.config"], ana.id, ana.link_version)
    web = app.test_client()
    assert log_in(web, nurse.email).status_code == 302
    assert web.get("/").headers["Location"].startswith("/account/two-factor")
    assert web.get(page.removeprefix(app.extensions["aftercare.config"].PUBLIC_BASE_URL)
                   ).status_code == 200
    assert web.get("/healthz").status_code == 200
    assert web.get("/api/v1/visits/1").status_code == 401  # the API's own answer: no key
