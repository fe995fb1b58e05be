"""The second factor on the web: enrolment at /account/two-factor, the code step of a login at
/login/code, turning it off.

After the right password, a user with a second factor gets no session yet: a pending login (who,
since when; in the signed Flask session, good for PENDING_FOR) waits for a code. Codes go through
the login throttle as passwords do, so a guesser who has the password cannot try them all.

A clinic that requires it lets a staff member without one log in, but the gate below sends every
request of that session to enrolment until it is done.
"""

import secrets
from datetime import timedelta

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from service import db
from service.accounts import totp
from service.accounts.passwords import verify_password
from service.care import audit
from service.models import Clinic, StaffUser, utcnow
from service.web.auth import bp, sessions, throttle
from service.web.security import local_path

PENDING_FOR = timedelta(minutes=5)
_PENDING, _SECRET = "pending_login", "totp_enrolling"
# What a session that must enrol first may still open.
_OPEN = {"auth.two_factor", "auth.logout", "auth.confirm_password"}
_STAFF_PAGES = {"staff", "auth"}


class CodeForm(FlaskForm):
    code = StringField(lazy_gettext("Code"), validators=[DataRequired(), Length(max=20)])


class OffForm(CodeForm):
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=200)])


def needed(user: StaffUser) -> bool:
    """Whether the password alone is not enough for this user: they have a second factor."""
    return bool(user.totp_secret)


def pend(user: StaffUser) -> str:
    """The password was right: hold the login until a code comes. Returns the code page's URL."""
    session.clear()
    session[_PENDING] = {"staff_id": user.id, "at": utcnow().timestamp()}
    return url_for("auth.login_code", next=local_path(request.args.get("next")))


def _pending_user() -> StaffUser | None:
    pending = session.get(_PENDING)
    if not isinstance(pending, dict) or \
            utcnow().timestamp() - pending.get("at", 0) > PENDING_FOR.total_seconds():
        return None
    user = db.session().get(StaffUser, pending.get("staff_id"))
    return user if user and user.active and needed(user) else None


def _errors(form) -> str:
    return "; ".join(f"{form[name].label.text}: {', '.join(problems)}"
                     for name, problems in form.errors.items())


@bp.route("/login/code", methods=["GET", "POST"])
def login_code():
    user, back = _pending_user(), local_path(request.args.get("next"))
    if user is None:
        if session.pop(_PENDING, None):
            flash(_("That sign-in waited too long for its code: log in again."))
        return redirect(url_for("auth.login", next=back))
    form, error = CodeForm(), None
    if form.is_submitted() and not form.validate():
        return render_template("web/auth/code.html", form=form, error=_errors(form)), 422
    if form.is_submitted():
        db_session = db.session()
        attempt = throttle.reserve(db_session, user.email, request.remote_addr or "?")
        factor = totp.check(db_session, user, form.code.data)
        if factor:
            throttle.succeeded(db_session, attempt)
            sessions.start(db_session, user)
            audit.record(db_session, "staff_login", clinic_id=user.clinic_id,
                         actor=f"staff:{user.id}", factor=factor)
            db_session.commit()
            return redirect(back or url_for("staff.dashboard"))
        error = _("That code is not right (or was already used): try the next one.")
        audit.record(db_session, "totp_failed", clinic_id=user.clinic_id, actor="anonymous",
                     staff_id=user.id)
        db_session.commit()
    return render_template("web/auth/code.html", form=form, error=error), 401 if error else 200


@bp.route("/account/two-factor", methods=["GET", "POST"])
@login_required
@sessions.recent_password()
def two_factor():
    """Enrol (a new secret, whose nonce waits in the Flask session until a code from it comes
    back), or see that it is on and turn it off."""
    user, back = current_user._get_current_object(), local_path(request.args.get("next"))
    here = db.session().get(Clinic, user.clinic_id)
    if user.totp_secret:
        return _status_page(user, here, OffForm())
    secret = totp.enrolling_secret(current_app.secret_key, user.id,
                                   session.setdefault(_SECRET, secrets.token_urlsafe(16)))
    form, error = CodeForm(), None
    if form.is_submitted() and not form.validate():
        error = _errors(form)
    elif form.is_submitted():
        db_session = db.session()
        codes = totp.enable(db_session, user, secret, form.code.data)
        if codes is not None:
            session.pop(_SECRET)
            audit.record(db_session, "totp_enabled", clinic_id=user.clinic_id,
                         actor=f"staff:{user.id}")
            db_session.commit()
            return render_template("web/auth/recovery_codes.html", codes=codes,
                                   back=back or url_for("staff.dashboard"))
        error = _("That code is not right: check the phone's time, and type the code it shows now.")
    return render_template("web/auth/enrol.html", form=form, error=error, secret=secret,
                           qr=totp.qr_data_uri(secret, user.email), required=here.require_totp), \
        422 if error else 200


@bp.post("/account/two-factor/off")
@login_required
def two_factor_off():
    """Password and a code, each checked; wrong ones count in the login throttle."""
    user = current_user._get_current_object()
    here = db.session().get(Clinic, user.clinic_id)
    form, error = OffForm(), None
    if here.require_totp:
        error = _("Your clinic requires a second factor: it cannot be turned off.")
    elif not form.validate():
        error = _errors(form)
    else:
        db_session = db.session()
        attempt = throttle.reserve(db_session, user.email, request.remote_addr or "?")
        if not verify_password(user.password_hash, form.password.data):
            error = _("Password: not right.")
        elif not totp.check(db_session, user, form.code.data):
            error = _("Code: not right, or already used.")
        else:
            throttle.succeeded(db_session, attempt)
            totp.disable(db_session, user)
            audit.record(db_session, "totp_disabled", clinic_id=user.clinic_id,
                         actor=f"staff:{user.id}")
            db_session.commit()
            return redirect(url_for("auth.two_factor"))
        audit.record(db_session, "totp_failed", clinic_id=user.clinic_id,
                     actor=f"staff:{user.id}", staff_id=user.id)
        db_session.commit()
    return _status_page(user, here, form, error), 422


def _status_page(user, here, form, error=None):
    return render_template("web/auth/two_factor_on.html", form=form, error=error,
                           required=here.require_totp,
                           codes_left=totp.recovery_codes_left(db.session(), user))


@bp.before_app_request
def enrol_first():
    """A session of a staff member whose clinic requires a second factor they do not have opens
    only enrolment (and logout) until it is done. Only staff pages look: the API, webhooks and
    client pages carry no staff session, and a Twilio webhook should not load one."""
    if request.blueprint not in _STAFF_PAGES or request.endpoint in _OPEN \
            or not current_user.is_authenticated or current_user.totp_secret:
        return None
    if not db.session().get(Clinic, current_user.clinic_id).require_totp:
        return None
    there = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("auth.two_factor", next=local_path(there)))
