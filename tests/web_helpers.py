"""Helpers for tests that use the web pages through Flask's test client."""

import re

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
