"""Login, throttled per (email, address) pair and per address (see throttle): a guesser slows
itself, never the staff member whose email it guesses."""

from flask import redirect, render_template, request, url_for
from flask_login import login_required, login_user, logout_user
from sqlmodel import select

from service import db
from service.accounts.passwords import hash_password, verify_password
from service.care import audit
from service.extensions import login_manager
from service.models import StaffUser
from service.web.auth import bp, throttle
from service.web.auth.forms import LoginForm
from service.web.security import local_path

# An unknown email is checked against this hash, so that it takes as long as a wrong password
# and the answer's timing does not tell which emails have an account.
_NO_ACCOUNT = hash_password("no account has this email")


@login_manager.user_loader
def load_user(user_id: str) -> StaffUser | None:
    return db.session().get(StaffUser, int(user_id)) if user_id.isdigit() else None


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        session = db.session()
        attempt = throttle.reserve(session, email, request.remote_addr or "?")
        user = session.exec(select(StaffUser).where(StaffUser.email == email)).first()
        matches = verify_password(user.password_hash if user else _NO_ACCOUNT, form.password.data)
        if user and matches:
            throttle.succeeded(session, attempt)
            login_user(user)
            audit.record(session, "staff_login", clinic_id=user.clinic_id, actor=f"staff:{user.id}")
            session.commit()
            return redirect(local_path(request.args.get("next")) or url_for("staff.dashboard"))
        error = "That email and password do not match."
    return render_template("web/auth/login.html", form=form, error=error), 401 if error else 200


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("auth.login"))
