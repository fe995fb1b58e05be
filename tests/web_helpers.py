"""Helpers for tests that use the web pages through Flask's test client."""

import re
from datetime import timedelta

import pyotp
from sqlmodel import Session

from service.accounts.passwords import hash_password
from service.models import StaffUser

PASSWORD = "correct horse battery"


def csrf_token(response) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


def make_staff(session: Session, clinic, email: str, role: str = "owner") -> StaffUser:
    user = StaffUser(clinic_id=clinic.id, email=email, name=email.split("@")[0].title(),
                     role=role, password_hash=hash_password(PASSWORD))
    session.add(user)
    session.commit()
    return user


def log_in(client, email: str, password: str = PASSWORD):
    token = csrf_token(client.get("/login"))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


# --- the second factor (tests/test_totp.py) ---

STEP = timedelta(seconds=30)  # a TOTP time step


def enrol(client) -> tuple[str, list[str]]:
    """Turns the second factor on for the logged-in user: (secret, recovery codes)."""
    page = client.get("/account/two-factor")
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', page.get_data(as_text=True))[1]
    done = client.post("/account/two-factor", data={"code": pyotp.TOTP(secret).now(),
                                                     "csrf_token": csrf_token(page)})
    assert done.status_code == 200, done.get_data(as_text=True)
    return secret, re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.get_data(as_text=True))


def enrolled(app, session, clinic, email="owner@clinic.example", role="owner"):
    """A staff member with a second factor, logged out: (user, secret, recovery codes)."""
    user = make_staff(session, clinic, email, role=role)
    web = app.test_client()
    assert log_in(web, email).status_code == 302
    secret, codes = enrol(web)
    session.expire_all()
    return session.get(StaffUser, user.id), secret, codes


def password_step(app, email: str, next_path: str = "/settings"):
    web = app.test_client()
    token = csrf_token(web.get("/login"))
    response = web.post(f"/login?next={next_path}",
                        data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login/code")
    return web, response.headers["Location"]


def code_step(web, location: str, code: str):
    return web.post(location, data={"code": code, "csrf_token": csrf_token(web.get(location))})
