"""Login, throttled per (email, address) pair and per address (see throttle): a guesser slows
itself, never the staff member whose email it guesses."""

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlmodel import select

from service import db
from service.accounts.passwords import hash_password, new_password_refusal, verify_password
from service.care import audit
from service.models import StaffUser
from service.web.auth import bp, sessions, throttle, two_factor
from service.web.auth.forms import ConfirmForm, LoginForm, PasswordForm
from service.web.security import local_path


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    failed = False  # the page says so in the reader's language
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        session = db.session()
        attempt = throttle.reserve(session, email, request.remote_addr or "?")
        user = session.exec(select(StaffUser).where(StaffUser.email == email)).first()
        matches = verify_password(user.password_hash if user else None, form.password.data)
        if user and matches and user.active:  # deactivated: the same answer as a wrong password
            throttle.succeeded(session, attempt)
            if two_factor.needed(user):  # no session until the code comes (audited then)
                session.commit()
                return redirect(two_factor.pend(user))
            sessions.start(session, user)
            audit.record(session, "staff_login", clinic_id=user.clinic_id, actor=f"staff:{user.id}")
            session.commit()
            return redirect(local_path(request.args.get("next")) or url_for("staff.dashboard"))
        failed = True
        audit.record(session, "login_failed", clinic_id=user.clinic_id if user else None,
                     actor="anonymous", email=email)
        session.commit()
    return render_template("web/auth/login.html", form=form, failed=failed), 401 if failed else 200


@bp.post("/logout")
@login_required
def logout():
    session = db.session()
    sessions.end_current(session)
    audit.record(session, "staff_logout", clinic_id=current_user.clinic_id,
                 actor=f"staff:{current_user.id}")
    session.commit()
    return redirect(url_for("auth.login"))


@bp.route("/confirm-password", methods=["GET", "POST"])
@login_required
def confirm_password():
    """Sensitive actions send here when the password was last typed over 10 minutes ago."""
    form, error = ConfirmForm(), None
    back = local_path(request.args.get("next")) or url_for("staff.dashboard")
    if form.validate_on_submit():
        if verify_password(current_user.password_hash, form.password.data):
            sessions.confirmed(db.session())
            db.session().commit()
            return redirect(back)
        error = _("That password is not right.")
    return render_template("web/auth/confirm.html", form=form, error=error), 401 if error else 200


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """A staff member's own password; every other session of theirs ends (a stolen one too)."""
    form, error = PasswordForm(), None
    if form.validate_on_submit():
        refusal = new_password_refusal(form.new_password.data)
        if not verify_password(current_user.password_hash, form.current_password.data):
            error = _("Your current password is not right.")
        elif refusal:
            error = _("New password: %(problem)s.", problem=_(refusal[0], **refusal[1]))
        else:
            session = db.session()
            user = current_user._get_current_object()
            user.password_hash = hash_password(form.new_password.data)
            session.add(user)
            sessions.end_all(session, current_user.id, keep_current=True)
            audit.record(session, "password_changed", clinic_id=current_user.clinic_id,
                         actor=f"staff:{current_user.id}")
            session.commit()
            flash(_("Password changed; your other sessions are signed out."))
            return redirect(url_for("staff.dashboard"))
    return render_template("web/auth/password.html", form=form, error=error), 422 if error else 200
