"""Login is rate-limited per email and per address, counted in the database so that every web
process sees the same count."""

from datetime import timedelta
from urllib.parse import urlsplit

from flask import redirect, render_template, request, url_for
from flask_login import login_required, login_user, logout_user
from sqlmodel import func, or_, select
from werkzeug.exceptions import TooManyRequests

from service import db
from service.accounts.passwords import verify_password
from service.care import audit
from service.extensions import login_manager
from service.models import LoginAttempt, StaffUser, utcnow
from service.web.auth import bp
from service.web.auth.forms import LoginForm

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)


@login_manager.user_loader
def load_user(user_id: str) -> StaffUser | None:
    return db.session().get(StaffUser, int(user_id)) if user_id.isdigit() else None


def _recent_failures(email: str) -> int:
    return db.session().exec(
        select(func.count()).select_from(LoginAttempt).where(
            or_(LoginAttempt.email == email, LoginAttempt.remote_addr == request.remote_addr),
            LoginAttempt.at > utcnow() - WINDOW)
    ).one()


def _local_path(target: str | None) -> str | None:
    """Where to go after logging in (the page that asked for it), if it is a path on this site:
    anything else would turn the login page into an open redirect."""
    if target and target.startswith("/") and not urlsplit(target).netloc and "\\" not in target:
        return target
    return None


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        if _recent_failures(email) >= MAX_FAILURES:  # the error page asks to wait this long
            raise TooManyRequests("Too many failed logins.", retry_after=int(WINDOW.total_seconds()))
        session = db.session()
        user = session.exec(select(StaffUser).where(StaffUser.email == email)).first()
        if user and verify_password(user.password_hash, form.password.data):
            login_user(user)
            audit.record(session, "staff_login", clinic_id=user.clinic_id, actor=f"staff:{user.id}")
            session.commit()
            return redirect(_local_path(request.args.get("next")) or url_for("staff.dashboard"))
        session.add(LoginAttempt(email=email, remote_addr=request.remote_addr or "?"))
        session.commit()
        error = "That email and password do not match."
    return render_template("web/auth/login.html", form=form, error=error), 401 if error else 200


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("auth.login"))
