"""Clinic settings (owners only), one form per section: the clinic (name, phone, address, time
zone, quiet hours), on-call contacts, the plan's timings, texting, wording, staff, API keys and
security."""

import re
import secrets
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.lists import format_list
from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import format_number, get_locale, lazy_gettext
from flask_babel import gettext as _
from flask_login import current_user
from sqlmodel import select

from service import db
from service.accounts import apikeys, passwords, tokens, totp
from service.care import audit
from service.care.schemas import LANGUAGES, check_time_zone, e164
from service.care.scope import mine
from service.domain import wording as own_wording
from service.domain.careplan import PLAN_KINDS
from service.domain.roles import Permission, Role
from service.messaging import phones
from service.messaging.channels.sms_twilio import check_messaging_service
from service.messaging.links import client_page_url
from service.messaging.rendering import Renderer, as_sent, local_time_label, wording_problems
from service.messaging.sms_segments import segment_count
from service.models import ApiKey, Clinic, StaffUser, utcnow
from service.web.auth import sessions, throttle
from service.web.auth.links import issue_link
from service.web.staff import bp, clinic, owned, requires

ROLES = [str(role) for role in Role]
# What the page calls each role and each kind of text (the stored names, spaced, in English).
ROLE_NAMES = {"owner": lazy_gettext("owner"), "clinician": lazy_gettext("clinician"),
              "front_desk": lazy_gettext("front desk"), "read_only": lazy_gettext("read only")}
KIND_NAMES = {"window_start": lazy_gettext("window start"), "hydration": lazy_gettext("hydration"),
              "heat": lazy_gettext("heat"), "checkin": lazy_gettext("checkin"),
              "followup": lazy_gettext("followup"),
              "appointment_reminder": lazy_gettext("appointment reminder"),
              "rebook_nudge": lazy_gettext("rebook nudge")}
OFFSETS = {"hydration_after": lazy_gettext("Hydration tip"), "heat_after": lazy_gettext("Heat tip"),
           "checkin_after": lazy_gettext("Check-in"), "followup_after": lazy_gettext("Follow-up"),
           "reminder_before": lazy_gettext("Appointment reminder (before)")}


# The page's sections that save clinic fields, each its own form with its own Save: a section
# posts only its fields and saving it writes only those, so an unticked box of another section
# is never read as "off" and what another section shows comes from the database. Texting,
# wording, staff and API keys have their own routes below.
SECTIONS = {"clinic": lazy_gettext("Clinic"), "on_call": lazy_gettext("On call"),
            "plan": lazy_gettext("Aftercare plan"), "security": lazy_gettext("Security")}


def _parse_section(section: str, form) -> tuple[dict, dict]:
    """Returns (changes, errors) of one section: every field is checked before anything is saved."""
    changes, errors = {}, {}

    def take(name, parse):
        try:
            changes[name] = parse(form.get(name, "").strip())
        except (ValueError, TypeError) as exc:
            errors[name] = str(exc) or _("invalid")

    if section == "clinic":
        take("name", lambda v: _text(v, 120, required=True))
        take("phone", e164)
        take("address", lambda v: _text(v, 200) or None)
        take("time_zone", check_time_zone)
        if form.get("quiet_off") == "on":  # start == end is how the plan reads "no quiet hours"
            changes["quiet_start"] = changes["quiet_end"] = time(0, 0)
        else:
            take("quiet_start", time.fromisoformat)
            take("quiet_end", time.fromisoformat)
            if "quiet_start" in changes and changes["quiet_start"] == changes.get("quiet_end"):
                errors["quiet_end"] = _("is the same as the start: tick \"No quiet hours\" to "
                                        "send at any hour, or choose when they end")
    elif section == "on_call":
        take("on_call_phones", lambda v: [e164(p) for p in _lines(v)])
        take("on_call_emails", lambda v: [_email(e) for e in _lines(v)])
        take("renotify_minutes", lambda v: _between(int(v), 5, 240))
        take("renotify_max", lambda v: _between(int(v), 0, 10))
    elif section == "plan":
        take("maintenance_weeks", lambda v: _between(int(v), 1, 6))
        take("weekly_visits", lambda v: _between(int(v), 0, 20))
        changes["use_suggested_interval"] = form.get("use_suggested_interval") == "on"
        changes["both_channels"] = form.get("both_channels") == "on"
        overrides = {"disabled_kinds": [k for k in PLAN_KINDS if form.get(f"kind_{k}") != "on"]}
        for name in OFFSETS:
            try:
                overrides[f"{name}_minutes"] = _between(round(float(form.get(name, "")) * 60),
                                                        0, 60 * 24 * 14)
            except (ValueError, TypeError) as exc:
                errors[name] = str(exc) or _("a number of hours")
        changes["plan_overrides"] = overrides
    elif section == "security":
        take("idle_timeout_minutes", lambda v: _between(int(v), 5, 240))
        changes["require_totp"] = form.get("require_totp") == "on"
    return changes, errors


def _text(value: str, longest: int, required: bool = False) -> str:
    if required and not value:
        raise ValueError(_("is needed"))
    if len(value) > longest or any(ch in value for ch in "\r\n<>"):
        raise ValueError(_("at most %(num)s characters on one line, without < or >", num=longest))
    return value


def _lines(value: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\n]", value) if part.strip()]


def _between(value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise ValueError(_("must be between %(low)s and %(high)s", low=low, high=high))
    return value


def _email(value: str) -> str:
    if "@" not in value or any(ch in value for ch in "\r\n<>"):
        raise ValueError(_("not an email address: %(value)s", value=value))
    return value


@bp.route("/settings", methods=["GET", "POST"])
@requires(Permission.SETTINGS)
def settings():
    here = clinic()
    errors, sections = {}, []
    if request.method == "POST":
        sections = request.form.getlist("section")
        if not sections or any(section not in SECTIONS for section in sections):
            abort(400, _("section: one or more of %(names)s", names=", ".join(SECTIONS)))
        changes = {}
        for section in sections:
            found, problems = _parse_section(section, request.form)
            changes |= found
            errors |= problems
        if not errors:
            _save(here, changes)
            names = [str(SECTIONS[section]) for section in sections]
            flash(_("%(sections)s saved.", sections=format_list(names, locale=get_locale())))
            return _back(sections[0])
    return _page(here, errors=errors, language=request.args.get("language"), opened=sections)


def _back(section: str, **args):
    """To the settings page with the section just changed open and in view."""
    return redirect(url_for("staff.settings", **args, open=section, _anchor=section))


def _save(here, changes: dict) -> None:
    """Writes only the posted sections' fields, audited with what changed (the clinic's own
    details with their values: they are no one's personal data)."""
    session, actor = db.session(), f"staff:{current_user.id}"
    if "plan_overrides" in changes:
        changes["plan_overrides"]["wording"] = here.plan_overrides.get("wording", {})
    if "require_totp" in changes and changes["require_totp"] != here.require_totp:
        audit.record(session, "totp_requirement_changed", clinic_id=here.id, actor=actor,
                     required=changes["require_totp"])
    changed = sorted(name for name, value in changes.items() if getattr(here, name) != value)
    details = {name: changes[name] for name in ("name", "phone", "address") if name in changed}
    if details:
        audit.record(session, "clinic_details_changed", clinic_id=here.id, actor=actor, **details)
    for name, value in changes.items():
        setattr(here, name, value)
    here.plan_settings()  # validates the combination before it is stored
    session.add(here)
    audit.record(session, "settings_changed", clinic_id=here.id, actor=actor, changed=changed)
    session.commit()


def _page(here, errors: dict | None = None, new_key: str | None = None,
          typed: dict | None = None, language: str | None = None, opened=()):
    """`typed`: the wording as the owner typed it, shown again when it was refused; `language`:
    the one whose wording the editor shows (English unless another is chosen). Each section is
    folded (a phone's page is short) but for `opened`, the one with an error or a new key, and
    the one asked for by ?open= (the section links at the top, a redirect after a save)."""
    language = language if language in LANGUAGES else "en"
    session = db.session()
    staff = session.exec(mine(StaffUser, here.id).order_by(StaffUser.name)).all()
    keys = session.exec(mine(ApiKey, here.id).order_by(ApiKey.created_at.desc())).all()
    plan = here.plan_settings()
    wording = {kind: _preview(here, kind, (typed or {}).get(kind)
                              or _current_wording(here, kind, language), language)
               for kind in PLAN_KINDS}
    ours = {kind: renderer.starting_wording(kind, language) for kind in PLAN_KINDS}
    hours = {name: f"{getattr(plan, name).total_seconds() / 3600:g}" for name in OFFSETS}
    return render_template("web/staff/settings.html", clinic=here, errors=errors or {}, staff=staff,
                           keys=keys, kinds=PLAN_KINDS, plan=plan, hours=hours, offsets=OFFSETS,
                           zones=sorted(_common_zones(here.time_zone)), wording=wording,
                           placeholders={kind: own_wording.allowed(kind) for kind in PLAN_KINDS},
                           language=language, languages=LANGUAGES, ours=ours,
                           max_length=own_wording.MAX_LENGTH, max_segments=own_wording.MAX_SEGMENTS,
                           new_key=new_key, min_password=passwords.MIN_LENGTH,
                           scopes=apikeys.SCOPES, roles=ROLES, role_names=ROLE_NAMES,
                           kind_names=KIND_NAMES, now=utcnow(),
                           opened={*opened, request.args.get("open")}), \
        422 if errors else 200


def _common_zones(current: str) -> set[str]:
    ZoneInfo(current)
    return {current, "America/New_York", "America/Chicago", "America/Denver",
            "America/Los_Angeles", "America/Phoenix", "America/Anchorage", "Pacific/Honolulu",
            "America/Mexico_City", "America/Bogota", "Europe/London", "Europe/Madrid"}


@bp.post("/settings/staff")
@sessions.recent_password(back="staff.settings")
@requires(Permission.MANAGE_STAFF)
def settings_add_staff():
    here = clinic()
    email = request.form.get("email", "").strip().lower()
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "")
    role = request.form.get("role") if request.form.get("role") in ROLES else Role.CLINICIAN
    session = db.session()
    refusal = passwords.new_password_refusal(password)
    if not name or "@" not in email or refusal:
        needed = _("A name, an email and a password of at least %(num)s characters are needed.",
                   num=passwords.MIN_LENGTH)
        flash(_("%(needed)s Password: %(problem)s.", needed=needed,
                problem=_(refusal[0], **refusal[1])) if refusal else needed)
        return _back("staff")
    password_hash = passwords.hash_password(password)  # hashed either way: the same time taken
    existing = session.exec(select(StaffUser).where(StaffUser.email == email)).first()
    if existing and existing.clinic_id == here.id:
        flash(_("That email is already on your staff."))  # the list below shows it anyway
        return _back("staff")
    if existing is None:
        session.add(StaffUser(clinic_id=here.id, email=email, name=name, role=role,
                              password_hash=password_hash))
        audit.record(session, "staff_added", clinic_id=here.id, actor=f"staff:{current_user.id}",
                     email=email, role=role)
        session.commit()
    # An email used at another clinic gets the same answer as a new one, and nothing is added,
    # sent or logged: saying "already has an account" would tell any owner who works elsewhere.
    # The answer stays true in both cases; the staff list below shows who was added (an
    # invitation by email, issue 15 item 3, is where this closes fully).
    flash(_("If that email has no account yet, %(name)s can now log in; your staff are listed "
            "below.", name=name))
    return _back("staff")


@bp.post("/settings/staff/invite")
@sessions.recent_password(back="staff.settings")
@requires(Permission.MANAGE_STAFF)
def settings_invite_staff():
    """A new staff member by email: no usable password until they choose one through the
    link (accounts/tokens.py). An email used at another clinic gets the same answer as a new
    one, and nothing is added or sent (see settings_add_staff)."""
    here = clinic()
    email = request.form.get("email", "").strip().lower()
    name = request.form.get("name", "").strip()[:120]
    role = request.form.get("role")
    try:
        _email(email)
    except ValueError as exc:
        return _page(here, errors={"invite_email": str(exc)}, opened=["staff"])
    if not name or role not in ROLES:
        return _page(here, errors={"invite_name" if not name else "invite_role":
                                   _("a name is needed") if not name else _("choose a role")},
                     opened=["staff"])
    session = db.session()
    existing = session.exec(select(StaffUser).where(StaffUser.email == email)).first()
    if existing and existing.clinic_id == here.id:
        flash(_("That email is already on your staff: send them a new invitation from the list."))
        return _back("staff")
    if existing is None:
        # A random password nobody knows: no usable one, and a login attempt costs the same.
        user = StaffUser(clinic_id=here.id, email=email, name=name, role=role,
                         password_hash=passwords.hash_password(secrets.token_urlsafe(32)))
        session.add(user)
        session.flush()
        issue_link(session, user, tokens.INVITE)
        audit.record(session, "staff_invited", clinic_id=here.id, actor=f"staff:{current_user.id}",
                     staff_id=user.id, role=role)
        session.commit()
    flash(_("If that email has no account yet, %(name)s gets an invitation by email; it works "
            "once, for 7 days.", name=name))
    return _back("staff")


def _done(user: StaffUser, action: str, words: str):
    """How every action on one staff member ends (the routes below): audited as `action`, who
    did it to whom, committed, said in `words`, back to the staff section."""
    audit.record(db.session(), action, clinic_id=user.clinic_id, actor=f"staff:{current_user.id}",
                 staff_id=user.id)
    db.session().commit()
    flash(words)
    return _back("staff")


@bp.post("/settings/staff/<int:user_id>/invite")
@sessions.recent_password(back="staff.settings")
@requires(Permission.MANAGE_STAFF)
def settings_reinvite_staff(user_id: int):
    """A new invitation (lost, expired): the older link stops working."""
    user = owned(StaffUser, user_id)
    if not user.active:
        flash(_("%(name)s is deactivated: reactivate them first.", name=user.name))
        return _back("staff")
    issue_link(db.session(), user, tokens.INVITE)
    return _done(user, "staff_invite_resent", _(
        "A new invitation is on its way to %(email)s; the older link no longer works.",
        email=user.email))


@bp.post("/settings/staff/<int:user_id>/active")
@sessions.recent_password(back="staff.settings")
@requires(Permission.MANAGE_STAFF)
def settings_staff_active(user_id: int):
    """Deactivate (their sessions end, they cannot log in) or reactivate a staff member: kept,
    not deleted, since the audit trail and acknowledgements name them."""
    user = owned(StaffUser, user_id)
    if user.id == current_user.id:
        flash(_("You cannot deactivate yourself."))
        return _back("staff")
    user.active = not user.active
    db.session().add(user)
    if user.active:
        return _done(user, "staff_activated", _("%(name)s is active again.", name=user.name))
    sessions.end_all(db.session(), user.id)
    return _done(user, "staff_deactivated",
                 _("%(name)s is deactivated and signed out.", name=user.name))


@bp.post("/settings/staff/<int:user_id>/sign-out")
@sessions.recent_password(back="staff.settings")
@requires(Permission.MANAGE_STAFF)
def settings_staff_sign_out(user_id: int):
    """Sign a staff member out everywhere (a lost phone, a shared computer)."""
    user = owned(StaffUser, user_id)
    sessions.end_all(db.session(), user.id)
    return _done(user, "staff_signed_out", _("%(name)s is signed out everywhere.", name=user.name))


@bp.post("/settings/staff/<int:user_id>/clear-throttle")
@sessions.recent_password(back="staff.settings")
@requires(Permission.MANAGE_STAFF)
def settings_clear_throttle(user_id: int):
    """Someone guessing a staff member's password from the same address slows them too (a shared
    office or proxy address): their owner can let them in at once."""
    user = owned(StaffUser, user_id)
    throttle.clear(db.session(), user.email)
    return _done(user, "login_throttle_cleared",
                 _("%(name)s can log in again at once.", name=user.name))


@bp.post("/settings/staff/<int:user_id>/two-factor/reset")
@sessions.recent_password(back="staff.settings")
@requires(Permission.MANAGE_STAFF)
def settings_reset_two_factor(user_id: int):
    """A lost phone: the staff member logs in with the password alone, or enrols again at once
    if the clinic requires a second factor. Their sessions end (the lost phone may hold one)."""
    user = owned(StaffUser, user_id)
    totp.disable(db.session(), user)
    sessions.end_all(db.session(), user.id)
    return _done(user, "totp_reset", _(
        "%(name)s's second factor is reset and they are signed out everywhere: they set up "
        "a new one at their next login.", name=user.name))


@bp.post("/settings/api-keys")
@sessions.recent_password(back="staff.settings")
@requires(Permission.MANAGE_KEYS)
def settings_create_key():
    name = request.form.get("name", "").strip()[:80] or "booking system"
    scopes = [scope for scope in apikeys.SCOPES if scope in request.form.getlist("scope")]
    days = request.form.get("expires_in_days", "").strip()
    if not scopes or not (days == "" or days.isdigit() and 1 <= int(days) <= 3650):
        flash(_("A key needs at least one scope, and an expiry, if any, of 1 to 3650 days."))
        return _back("api_keys")
    here = clinic()
    key = apikeys.issue(db.session(), here, name, scopes=scopes,
                        expires_at=utcnow() + timedelta(days=int(days)) if days else None,
                        actor=f"staff:{current_user.id}")
    return _page(here, new_key=key, opened=["api_keys"])  # shown once, on this page only


@bp.post("/settings/sender")
@requires(Permission.SETTINGS)
def settings_sender():
    """The clinic's own sender and daily cap, apart from the other settings: a wrong sender
    sends the clinic's replies elsewhere."""
    here, form, errors = clinic(), request.form, {}
    sender, cap = form.get("sms_sender", "").strip() or None, None
    try:
        if sender:
            sender = (check_messaging_service if sender.startswith("MG") else e164)(sender)
    except ValueError as exc:
        errors["sms_sender"] = str(exc)
    typed_cap = form.get("daily_send_cap", "").strip()
    try:
        cap = int(typed_cap) if typed_cap else None
    except ValueError:
        errors["daily_send_cap"] = _("a whole number")
    try:
        cap = _between(cap, 1, 1_000_000) if cap is not None else None
    except ValueError as exc:
        errors["daily_send_cap"] = str(exc)
    others = db.session().exec(select(Clinic).where(Clinic.id != here.id)).all()
    if sender and any(other.sms_sender == sender for other in others):
        errors["sms_sender"] = _("another clinic of this service sends from it already")
    elif not sender and others and "sms_sender" not in errors:
        errors["sms_sender"] = _("this service has several clinics: each needs its own number "
                                 "or Messaging Service, or replies could not be told apart")
    if errors:
        return _page(here, errors=errors, opened=["texting"])
    here.sms_sender, here.daily_send_cap = sender, cap
    db.session().add(here)
    audit.record(db.session(), "sender_changed", clinic_id=here.id,
                 actor=f"staff:{current_user.id}", sender=sender, daily_send_cap=cap)
    db.session().commit()
    flash(_("Texting settings saved."))
    return _back("texting")


@bp.post("/settings/api-keys/<int:key_id>/revoke")
@sessions.recent_password(back="staff.settings")
@requires(Permission.MANAGE_KEYS)
def settings_revoke_key(key_id: int):
    key = owned(ApiKey, key_id)
    if not key.revoked_at:
        apikeys.revoke(db.session(), key, actor=f"staff:{current_user.id}")
        flash(_("Key %(prefix)s… revoked.", prefix=key.prefix))
    return _back("api_keys")


@bp.post("/settings/staff/role")
@sessions.recent_password(back="staff.settings")
@requires(Permission.MANAGE_STAFF)
def settings_change_role():
    """Not one's own: the clinic then always keeps the owner who made the change."""
    staff_id, role = request.form.get("staff_id", ""), request.form.get("role")
    if not staff_id.isdigit() or int(staff_id) > db.MAX_ID:
        abort(404)
    user = owned(StaffUser, int(staff_id))
    if user.id == current_user.id or role not in ROLES:
        flash(_("Choose a role for someone else on your staff."))
    elif role != user.role:
        audit.record(db.session(), "role_changed", clinic_id=user.clinic_id,
                     actor=f"staff:{current_user.id}", staff_id=user.id, was=user.role, role=role)
        user.role = role
        db.session().add(user)
        db.session().commit()
        flash(_("%(name)s is now %(role)s.", name=user.name, role=ROLE_NAMES[role]))
    return _back("staff")


# --- the clinic's own wording of each text (domain/wording.py), with a live preview ------------

renderer = Renderer()
# The longest realistic values of what a clinic's texts show but does not know in advance.
LONG_FIRST_NAME = "Alexandria-Marguerite"
# A Wednesday in September at half past twelve: the longest day and month names and times in
# English ("Wed Sep 30, 12:30 PM") and Spanish ("miércoles, 30 de septiembre, 12:30").
LONG_MOMENT = datetime(2026, 9, 30, 12, 30, tzinfo=UTC)


def _longest(here, language: str) -> dict:
    """A message context with the longest values a client of this clinic can get, its times as
    a client whose language is the wording's reads them: the preview shows it, and a wording is
    checked against the segment budget with it."""
    config = current_app.extensions["aftercare.config"]
    return {"client_name": LONG_FIRST_NAME, "clinic_name": here.name,
            "clinic_phone": phones.display(here.phone),
            "emergency_number": phones.emergency_number(phones.region_of(here.phone)),
            "window_ends": local_time_label(LONG_MOMENT, "UTC", language),
            "appointment": local_time_label(LONG_MOMENT, "UTC", language, with_date=True),
            "page_url": client_page_url(config, db.MAX_ID, 999)}


def _problems(text: str, kind: str, longest: dict) -> list[str]:
    """wording_problems in the page's language."""
    return [_(problem.words, **{name: format_number(value) if isinstance(value, int) else value
                                for name, value in problem.values.items()})
            for problem in wording_problems(text, kind, longest)]


def _current_wording(here, kind: str, language: str) -> str:
    return here.plan_overrides.get("wording", {}).get(language, {}).get(kind) or \
        renderer.starting_wording(kind, language)


def _preview(here, kind: str, text: str, language: str) -> dict:
    """The text as a client with long values would get it (when it renders at all: as_sent, as
    it will be saved), and every problem that keeps it from being saved."""
    text = text or renderer.starting_wording(kind, language)  # empty: ours
    longest = _longest(here, language)
    preview = {"source": text, "problems": _problems(text, kind, longest)}
    try:
        body = own_wording.render(as_sent(text), kind, longest)
    except own_wording.WordingError:
        return preview
    encoding, segments = segment_count(body)
    return {**preview, "body": body, "encoding": encoding, "segments": segments,
            "summary": _("%(num)s segment(s), %(encoding)s", num=segments, encoding=encoding)}


@bp.post("/settings/preview")
@requires(Permission.SETTINGS)
def settings_preview():
    data = request.get_json(silent=True)
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in own_wording.EDITABLE or not isinstance(data.get("text", ""), str) \
            or data.get("language", "en") not in LANGUAGES:
        return jsonify(problems=[_("a kind of text a clinic can word, its text and its language")]), 400
    preview = _preview(clinic(), kind, data.get("text", ""), data.get("language", "en"))
    return jsonify(preview), 422 if preview["problems"] else 200


@bp.post("/settings/wording")
@requires(Permission.SETTINGS)
def settings_wording():
    """One language's texts: every text is checked before anything is saved; a text left as
    ours stays ours; the other languages' wordings are kept."""
    here = clinic()
    language = request.form.get("language", "en")
    if language not in LANGUAGES:
        abort(400, _("language: one of %(codes)s", codes=", ".join(LANGUAGES)))
    longest = _longest(here, language)
    wording, typed, errors = {}, {}, {}
    for kind in PLAN_KINDS:
        # A browser posts a textarea's line breaks as CRLF.
        typed[kind] = (request.form.get(f"wording_{kind}") or "").replace("\r\n", "\n").strip()
        text = as_sent(typed[kind])
        if not text or text == renderer.starting_wording(kind, language):
            continue  # ours
        if problems := _problems(text, kind, longest):
            errors[f"wording_{kind}"] = problems
        wording[kind] = text
    if errors:
        flash(_("Nothing was saved: see the texts marked below."))
        return _page(here, errors=errors, typed=typed, language=language,
                     opened=["wording"])
    here.plan_overrides = {**here.plan_overrides,
                           "wording": {**here.plan_overrides.get("wording", {}), language: wording}}
    db.session().add(here)
    audit.record(db.session(), "wording_changed", clinic_id=here.id,
                 actor=f"staff:{current_user.id}", language=language, kinds=sorted(wording))
    db.session().commit()
    flash(_("Wording saved."))
    return _back("wording", language=language)
