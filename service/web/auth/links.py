"""The pages behind the one-time email links (accounts/tokens.py): accepting an invitation,
asking for and using a password reset."""

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from sqlmodel import Session, select

from service import db
from service.accounts import tokens
from service.accounts.passwords import hash_password, new_password_refusal
from service.care import audit
from service.models import StaffUser, utcnow
from service.web.auth import bp, sessions, throttle
from service.web.auth.forms import NewPasswordForm, ResetRequestForm

SENT = lazy_gettext("If that address has an account, a link to set a new password is on its way. "
                    "It works once, for 30 minutes.")


@bp.route("/reset-password", methods=["GET", "POST"])
def request_reset():
    """The same answer and status whether or not the address has an account (or is
    deactivated: it gets nothing). Requests count against the login throttle's budget per
    address (as the email `reset:<email>`), and one inbox gets at most RESETS_PER_HOUR of them."""
    form = ResetRequestForm()
    if not form.validate_on_submit():
        return render_template("web/auth/reset_request.html", form=form, sent=None), \
            422 if request.method == "POST" else 200
    email, now = form.email.data.strip().lower(), utcnow()
    session = db.session()
    throttle.reserve(session, f"reset:{email}"[:254], request.remote_addr or "?")
    user = session.exec(select(StaffUser).where(StaffUser.email == email, StaffUser.active)).first()
    if user and tokens.recent_resets(session, user, now) < tokens.RESETS_PER_HOUR:
        issue_link(session, user, tokens.RESET)
    audit.record(session, "password_reset_requested", clinic_id=user.clinic_id if user else None,
                 actor="anonymous", email=email)
    session.commit()
    return render_template("web/auth/reset_request.html", form=form, sent=SENT)


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    """Sets the first password and logs the new staff member in."""
    return _set_password(token, tokens.INVITE)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """Sets a new password and ends every session of the account (a thief's too); then the
    login page, where a second factor still applies."""
    return _set_password(token, tokens.RESET)


def _set_password(token: str, purpose: str):
    session, now = db.session(), utcnow()
    user = tokens.holder(session, token, purpose, now)
    if user is None:
        return _gone(purpose)
    form, error = NewPasswordForm(), None
    if form.validate_on_submit():
        if refusal := new_password_refusal(form.password.data):
            error = _("New password: %(problem)s.", problem=_(refusal[0], **refusal[1]))
        else:
            password_hash = hash_password(form.password.data)  # before the row is locked
            user = tokens.use(session, token, purpose, now)
            if user is None:  # used meanwhile, in another tab
                session.rollback()
                return _gone(purpose)
            user.password_hash = password_hash
            session.add(user)
            sessions.end_all(session, user.id)
            throttle.clear(session, user.email)  # whoever reads their email may log in at once
            audit.record(session, "invite_accepted" if purpose == tokens.INVITE else "password_reset",
                         clinic_id=user.clinic_id, actor=f"staff:{user.id}")
            if purpose == tokens.INVITE:
                sessions.start(session, user)
                session.commit()
                return redirect(url_for("staff.dashboard"))
            session.commit()
            flash(_("Your password is changed, and every session of yours is signed out: log in."))
            return redirect(url_for("auth.login"))
    return render_template("web/auth/set_password.html", form=form, error=error, user=user,
                           purpose=purpose), 422 if error else 200


def _gone(purpose: str):
    return render_template("web/auth/link_gone.html", purpose=purpose), 410


def issue_link(session: Session, user: StaffUser, purpose: str) -> str:
    """tokens.issue from this installation's public address, now: the one place the web and the
    CLI (an invitation, a reset) read the two. Returns the link; the caller commits."""
    return tokens.issue(session, user, purpose, current_app.extensions["aftercare.config"]
                        .PUBLIC_BASE_URL, utcnow())
