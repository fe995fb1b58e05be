"""The `aftercare` command: Flask's CLI (run, shell, routes, db) plus the service's own commands;
`aftercare worker` is the jobs package's (jobs/commands.py, a Flask CLI plugin)."""

import copy
import functools
import json
import os
import secrets
from datetime import time, timedelta

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, run_command, with_appcontext
from pydantic import EmailStr, TypeAdapter, ValidationError
from sqlmodel import Session, select

from service import db
from service.accounts import apikeys, tokens
from service.accounts.passwords import hash_password, new_password_problem
from service.care import audit, client_import, privacy, retention, scope
from service.care.enrolment import enrol
from service.care.schemas import VisitIn, check_time_zone, e164
from service.config import Config, UnsafeSettings
from service.domain.roles import Role
from service.messaging.channels import SendError
from service.messaging.channels.sms_twilio import check_messaging_service
from service.models import Client, Clinic, StaffUser, utcnow
from service.ops import doctor, logs
from service.web.auth import sessions, throttle
from service.web.auth.links import issue_link

DEMO_CLINIC = "Demo Back Walking Studio"


# Files this process creates (the SQLite database, exports, the worker's files): no access for
# others. The systemd units set the same (UMask=0027).
UMASK = 0o027


def check_can_serve(config: Config) -> None:
    """Refuse to serve (web or worker) on settings anyone could exploit, as a CLI error."""
    try:
        config.check_can_serve()
    except UnsafeSettings as exc:
        raise click.ClickException(str(exc)) from None


def _refusing_unsafe_settings(command: click.Command) -> click.Command:
    """Flask's `run`, refusing the settings gunicorn's create_app() refuses."""
    serve = command.callback

    @functools.wraps(serve)
    def checked(*args, **kwargs):
        check_can_serve(Config())
        return serve(*args, **kwargs)

    refusing = copy.copy(command)
    refusing.callback = checked
    return refusing


@click.command("create-api-key")
@with_appcontext
@click.argument("clinic_id", type=int)
@click.option("--name", default="booking system", show_default=True)
@click.option("--scope", "scopes", multiple=True, type=click.Choice(list(apikeys.SCOPES)),
              help="What the key may do; repeat for several. Default: every scope (enrol, read, "
                   "acknowledge, audit), as keys made before scopes could; give a booking "
                   "system only what it uses.")
@click.option("--expires-in-days", type=click.IntRange(1, 3650),
              help="The key stops working after this many days. Default: never.")
def create_api_key_command(clinic_id: int, name: str, scopes: tuple[str, ...],
                           expires_in_days: int | None) -> None:
    """Create an API key for a clinic; it is printed once and stored only as a digest."""
    with Session(db.engine()) as session:
        clinic = session.get(Clinic, clinic_id)
        if clinic is None:
            raise click.ClickException(f"no clinic with id {clinic_id}")
        expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
        click.echo(apikeys.issue(session, clinic, name, scopes=scopes or tuple(apikeys.SCOPES),
                                 expires_at=expires_at, actor="cli"))


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Create the demo clinic (first time: prints its login and API key) and enrol a demo visit,
    whose first SMS the worker prints within a second."""
    with Session(db.engine(), expire_on_commit=False) as session:
        clinic = session.exec(select(Clinic).where(Clinic.name == DEMO_CLINIC)).first()
        if clinic is None:
            clinic = _create_demo_clinic(session)
        else:
            click.echo(f"Demo clinic exists (id {clinic.id}); its login and API key were printed "
                       f"when it was created. New key: aftercare create-api-key {clinic.id}")
        data = VisitIn.model_validate({
            "client": {"name": "Dana Demo", "phone": "+12025550123", "email": "dana@example.com",
                       "sms_consent": True, "time_zone": clinic.time_zone},
            "pain_before": 6, "pain_after": 4, "channels": ["sms"],
        })
        visit, _ = enrol(session, clinic, data, utcnow(), actor="demo")
        click.echo(f"Enrolled demo visit {visit.id} for Dana Demo: watch the worker's output.")


def _create_demo_clinic(session: Session) -> Clinic:
    # Quiet hours are off (start == end) so the demo shows its messages at any hour.
    clinic = Clinic(name=DEMO_CLINIC, phone="+12025550100", time_zone="America/New_York",
                    quiet_start=time(0, 0), quiet_end=time(0, 0),
                    on_call_phones=["+12025550101"], on_call_emails=["oncall@example.com"])
    session.add(clinic)
    session.commit()
    password = secrets.token_urlsafe(12)
    session.add(StaffUser(clinic_id=clinic.id, email="owner@example.com", name="Demo Owner",
                          password_hash=hash_password(password), role="owner"))
    session.commit()
    key = apikeys.issue(session, clinic, "demo", actor="cli")
    base = current_app.config["PUBLIC_BASE_URL"]
    click.echo(f"""
Created the demo clinic (id {clinic.id}). Shown once, keep them:
  staff login   owner@example.com / {password}
  API key       {key}
Try:  curl -X POST {base}/api/v1/visits -H 'Authorization: Bearer {key}' \\
        -H 'Content-Type: application/json' \\
        -d '{{"client": {{"name": "Sam Lee", "phone": "+12025550142", "sms_consent": true}}}}'
""")
    return clinic


class _Checked(click.ParamType):
    """A click parameter checked by one of the API's validators (which raise ValueError)."""

    def __init__(self, name: str, check):
        self.name = name
        self.check = check

    def convert(self, value, param, ctx):
        try:
            return self.check(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


PHONE = _Checked("phone", e164)
MESSAGING_SERVICE = _Checked("Messaging Service SID", check_messaging_service)
TIME_ZONE = _Checked("time zone", check_time_zone)


def _email(value: str) -> str:
    try:
        return TypeAdapter(EmailStr).validate_python(value).lower()
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"]) from None


EMAIL = _Checked("email", _email)


def _get(session: Session, model, row_id: int):
    row = session.get(model, row_id)
    if row is None:
        raise click.ClickException(f"no {model.__name__.lower()} with id {row_id}")
    return row


@click.command("create-clinic")
@with_appcontext
@click.argument("name")
@click.option("--phone", type=PHONE, required=True, help="The clinic's number, given to clients.")
@click.option("--time-zone", type=TIME_ZONE, default="America/New_York", show_default=True)
@click.option("--on-call-phone", type=PHONE, multiple=True, help="Texted on escalations; repeatable.")
@click.option("--on-call-email", type=EMAIL, multiple=True, help="Emailed on escalations; repeatable.")
@click.option("--sender", type=PHONE, help="The clinic's own Twilio number.")
@click.option("--messaging-service", type=MESSAGING_SERVICE,
              help="... or its Messaging Service SID (MG...).")
@click.option("--daily-send-cap", type=click.IntRange(min=1),
              help="Routine texts a day at most; the rest wait for the next day.")
def create_clinic_command(name, phone, time_zone, on_call_phone, on_call_email, sender,
                          messaging_service, daily_send_cap) -> None:
    """Create a clinic; prints its id. With more than one clinic, each needs its own sender:
    replies are routed to the clinic whose number received them."""
    sender = _one_sender(sender, messaging_service)
    with Session(db.engine()) as session:
        others = session.exec(select(Clinic).order_by(Clinic.id)).all()
        without = [other for other in others if other.sms_sender is None]
        if others and sender is None:
            lacking = ("; without one so far: " + ", ".join(f"{c.id} ({c.name})" for c in without)
                       if without else "")
            raise click.ClickException(
                "with more than one clinic, each needs its own sender (--sender +1... or "
                "--messaging-service MG...): replies are routed by the number they were sent to"
                + lacking)
        clinic = Clinic(name=name, phone=phone, time_zone=time_zone,
                        daily_send_cap=daily_send_cap, on_call_phones=list(on_call_phone),
                        on_call_emails=list(on_call_email))
        _save_sender(session, clinic, sender)
        click.echo(f"created clinic {clinic.id}: {clinic.name}")
        if not (on_call_phone or on_call_email):
            click.echo("warning: no on-call contact, so escalations alert nobody "
                       "(--on-call-phone, --on-call-email)", err=True)
        for other in without:
            click.echo(f"warning: clinic {other.id} ({other.name}) has no sender of its own: "
                       f"aftercare set-sender {other.id} --sender +1...", err=True)


@click.command("set-sender")
@with_appcontext
@click.argument("clinic_id", type=int)
@click.option("--sender", type=PHONE, help="The clinic's own Twilio number.")
@click.option("--messaging-service", type=MESSAGING_SERVICE,
              help="... or its Messaging Service SID (MG...).")
def set_sender_command(clinic_id, sender, messaging_service) -> None:
    """Set the number (or Messaging Service) a clinic's texts go from and its replies come to;
    point that number's webhook at this service (see the README's Twilio section)."""
    sender = _one_sender(sender, messaging_service)
    if sender is None:
        raise click.UsageError("give --sender or --messaging-service")
    with Session(db.engine()) as session:
        clinic = _get(session, Clinic, clinic_id)
        _save_sender(session, clinic, sender)
        click.echo(f"clinic {clinic.id} ({clinic.name}) now texts from {sender}")


def _one_sender(number: str | None, service: str | None) -> str | None:
    if number and service:
        raise click.UsageError("give --sender or --messaging-service, not both")
    return number or service


def _save_sender(session: Session, clinic: Clinic, sender: str | None) -> None:
    """Commits the clinic with this sender, refusing one another clinic has (whose would its
    replies be?)."""
    if sender and session.exec(select(Clinic).where(Clinic.sms_sender == sender,
                                                    Clinic.id != clinic.id)).first():
        raise click.ClickException(f"{sender} is another clinic's sender already")
    clinic.sms_sender = sender
    session.add(clinic)
    session.commit()


# A staff login's --role, for create-user and invite-staff.
ROLE = click.option("--role", type=click.Choice([str(role) for role in Role]),
                    default=Role.CLINICIAN.value, show_default=True,
                    help="What they may do: the table in service/domain/roles.py.")


@click.command("create-user")
@with_appcontext
@click.argument("clinic_id", type=int)
@click.argument("email", type=EMAIL)
@click.option("--name", required=True)
@ROLE
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Asked for when not given (better: it stays out of the shell history).")
def create_user_command(clinic_id, email, name, role, password) -> None:
    """Create a staff login for a clinic (password hashed with argon2)."""
    problem = new_password_problem(password)
    if problem:
        raise click.BadParameter(problem, param_hint="password")
    with Session(db.engine()) as session:
        _get(session, Clinic, clinic_id)
        if session.exec(select(StaffUser).where(StaffUser.email == email)).first():
            raise click.ClickException(f"{email} has a login already")
        user = StaffUser(clinic_id=clinic_id, email=email, name=name, role=role,
                         password_hash=hash_password(password))
        session.add(user)
        session.commit()
        click.echo(f"created {role} {email} (user {user.id}) for clinic {clinic_id}")


@click.command("invite-staff")
@with_appcontext
@click.argument("clinic_id", type=int)
@click.argument("email", type=EMAIL)
@click.option("--name", required=True)
@ROLE
def invite_staff_command(clinic_id, email, name, role) -> None:
    """Invite a staff member by email: a link to choose their password (once, for 7 days), sent
    by the worker and printed here too (for an installation with no SMTP yet). Again for the
    same email: a new link, the older one dead."""
    with Session(db.engine()) as session:
        _get(session, Clinic, clinic_id)
        user = session.exec(select(StaffUser).where(StaffUser.email == email)).first()
        if user and user.clinic_id != clinic_id:
            raise click.ClickException(f"{email} has a login at clinic {user.clinic_id}")
        if user is None:  # a random password nobody knows until the link sets one
            user = StaffUser(clinic_id=clinic_id, email=email, name=name, role=role,
                             password_hash=hash_password(secrets.token_urlsafe(32)))
            session.add(user)
            session.flush()
        link = issue_link(session, user, tokens.INVITE)
        audit.record(session, "staff_invited", clinic_id=clinic_id, actor="cli", staff_id=user.id,
                     role=user.role)
        click.echo(f"invited {user.role} {email} (user {user.id}); the link, once, for 7 days:\n{link}")
        session.commit()


def _staff(session: Session, email: str) -> StaffUser:
    user = session.exec(select(StaffUser).where(StaffUser.email == email)).first()
    if user is None:
        raise click.ClickException(f"no staff login with the email {email}")
    return user


@click.command("set-password")
@with_appcontext
@click.argument("email", type=EMAIL)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Asked for when not given (better: it stays out of the shell history).")
def set_password_command(email, password) -> None:
    """Set a staff member's password (one who cannot use the reset email): every session of
    theirs ends, and their failed logins are forgotten."""
    if problem := new_password_problem(password):
        raise click.BadParameter(problem, param_hint="password")
    with Session(db.engine()) as session:
        user = _staff(session, email)
        user.password_hash = hash_password(password)
        session.add(user)
        ended = sessions.end_all(session, user.id)
        throttle.clear(session, email)
        audit.record(session, "password_set", clinic_id=user.clinic_id, actor="cli",
                     staff_id=user.id)
        session.commit()
    click.echo(f"new password for {email}; {ended} session(s) ended")


def _set_active(email: str, active: bool) -> None:
    with Session(db.engine()) as session:
        user = _staff(session, email)
        user.active = active
        session.add(user)
        ended = 0 if active else sessions.end_all(session, user.id)
        audit.record(session, "staff_activated" if active else "staff_deactivated",
                     clinic_id=user.clinic_id, actor="cli", staff_id=user.id)
        session.commit()
    click.echo(f"{email} is active again" if active else
               f"{email} is deactivated; {ended} session(s) ended")


@click.command("deactivate-user")
@with_appcontext
@click.argument("email", type=EMAIL)
def deactivate_user_command(email) -> None:
    """A staff member can no longer log in, and every session of theirs ends (kept, not
    deleted: the audit trail names them)."""
    _set_active(email, False)


@click.command("reactivate-user")
@with_appcontext
@click.argument("email", type=EMAIL)
def reactivate_user_command(email) -> None:
    """A deactivated staff member can log in again."""
    _set_active(email, True)


@click.command("import-clients")
@with_appcontext
@click.argument("clinic_id", type=int)
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--skip-bad", is_flag=True, help="Import the valid rows even if some are bad.")
def import_clients_command(clinic_id, file, skip_bad) -> None:
    """Import clients from a CSV file with the columns name, phone, email, language, time_zone,
    sms_consent (only name is required). Every row is checked first; if any is bad, nothing is
    imported unless --skip-bad."""
    try:
        rows, problems = client_import.read(file)
    except client_import.BadHeader as exc:
        raise click.ClickException(str(exc)) from None
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems and not skip_bad:
        raise click.ClickException(f"{len(problems)} problem(s) found: nothing imported "
                                   "(fix them, or import the rest with --skip-bad)")
    with Session(db.engine()) as session:
        clinic = _get(session, Clinic, clinic_id)
        try:
            with click.progressbar(rows, label="importing") as bar:
                count = client_import.save(session, clinic, bar, utcnow())
            session.commit()
        except client_import.Conflict as exc:
            raise click.ClickException(f"{exc.args[0]}: nothing imported") from None
    skipped = len({problem.line for problem in problems})
    click.echo(f"imported {count} client(s)" + (f", skipped {skipped} bad row(s)" if skipped else ""))


def _clinic_s_client(session: Session, client_id: int, clinic_id: int | None) -> Client:
    """The client, and with --clinic only if it is that clinic's: a host acting for one clinic
    cannot export or erase another clinic's client by a mistyped id."""
    if clinic_id is None:
        return _get(session, Client, client_id)
    client = scope.owned(session, Client, clinic_id, client_id)
    if client is None:
        raise click.ClickException(f"clinic {clinic_id} has no client {client_id}")
    return client


CLINIC = click.option("--clinic", "clinic_id", type=int,
                      help="The clinic that asked: refused if the client is not its own.")


@click.command("export-client")
@with_appcontext
@click.argument("client_id", type=int)
@click.option("--output", "-o", type=click.File("w"), default="-", help="A file; stdout by default.")
@CLINIC
def export_client_command(client_id, output, clinic_id) -> None:
    """Everything stored about one client at their clinic, as JSON (a subject access request)."""
    with Session(db.engine()) as session:
        data = privacy.export_client(session, _clinic_s_client(session, client_id, clinic_id),
                                     utcnow())
    json.dump(data, output, indent=2, ensure_ascii=False)
    output.write("\n")


@click.command("erase-client")
@with_appcontext
@click.argument("client_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@CLINIC
def erase_client_command(client_id, yes, clinic_id) -> None:
    """Erase one client's personal data at their clinic and cancel what was still to be sent
    to them (the same person at another clinic is that clinic's: untouched)."""
    with Session(db.engine()) as session:
        client = _clinic_s_client(session, client_id, clinic_id)
        if client.name == privacy.ERASED:
            raise click.ClickException(f"client {client_id} was erased already")
        if not yes:
            click.confirm(f"Erase client {client_id} ({client.name})? This cannot be undone",
                          abort=True)
        try:
            privacy.erase_client(session, client, utcnow(), actor="cli")
        except privacy.ClientBusy as exc:
            raise click.ClickException(f"{exc}: try again in a minute") from None
        session.commit()
    click.echo(f"erased client {client_id}")


def _days_to_keep(days: int | None, setting: str) -> int:
    """A purge's period: --older-than, else the setting; with neither there is nothing to go by."""
    days = days or current_app.config[setting]
    if not days:
        raise click.UsageError(f"give --older-than DAYS ({setting} is not set)")
    return days


@click.command("purge")
@with_appcontext
@click.option("--older-than", "days", type=click.IntRange(min=1),
              help="Days to keep; RETENTION_DAYS by default.")
def purge_command(days) -> None:
    """Delete finished messages and inbound messages older than the retention period (what
    stays: see service/care/retention.py; the audit trail has its own, `audit purge`)."""
    days = _days_to_keep(days, "RETENTION_DAYS")
    counts = retention.purge(db.engine(), utcnow() - timedelta(days=days))
    click.echo(f"older than {days} days: " + ", ".join(f"{n} {what}" for what, n in counts.items()))


@click.group("audit")
def audit_group() -> None:
    """The audit trail: a hash chain per clinic (service/care/audit.py)."""


@audit_group.command("verify")
@with_appcontext
@click.option("--clinic", "clinic_id", type=int, help="One clinic's chain; every chain by default.")
def audit_verify_command(clinic_id) -> None:
    """Walk the chain(s); exit 1 naming the first broken link."""
    with Session(db.engine()) as session:
        for chain in [clinic_id] if clinic_id else audit.chains(session):
            checked, broken, last = audit.verify(session, chain)
            name = f"clinic {chain}" if chain else "no clinic"
            if broken:
                raise click.ClickException(f"{name}: broken at {broken} (after {checked} rows)")
            click.echo(f"ok: {checked} rows ({name}, last hash {last or '-'})")


@audit_group.command("purge")
@with_appcontext
@click.option("--older-than", "days", type=click.IntRange(min=1),
              help="Days to keep; AUDIT_RETENTION_DAYS by default.")
def audit_purge_command(days) -> None:
    """Delete each chain's audit rows older than its retention period, from its start."""
    days = _days_to_keep(days, "AUDIT_RETENTION_DAYS")
    gone = retention.purge_audit(db.engine(), utcnow() - timedelta(days=days))
    click.echo(f"older than {days} days: {gone} audit events")


@click.command("send-test-sms")
@with_appcontext
@click.argument("number", type=PHONE)
def send_test_sms_command(number) -> None:
    """Send one text through the configured Twilio account (checks the settings end to end)."""
    try:
        sid = doctor.send_test_sms(current_app.extensions["aftercare.config"], number)
    except SendError as exc:
        raise click.ClickException(f"Twilio did not accept it: {exc}") from None
    click.echo(f"sent: Twilio accepted it as {sid}; it should arrive within a minute")


@click.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """Check every setting, the database, Twilio's credentials, SMTP and the public URL."""
    findings = doctor.run(current_app.extensions["aftercare.config"], db.engine(), utcnow())
    for finding in findings:
        click.echo(str(finding))
    failures = sum(finding.level == doctor.FAIL for finding in findings)
    if failures:
        raise click.ClickException(f"{failures} problem(s) to fix")


def init_app(app: Flask) -> None:
    for command in (create_api_key_command, demo_command, create_clinic_command,
                    set_sender_command, create_user_command, invite_staff_command,
                    set_password_command, deactivate_user_command, reactivate_user_command,
                    import_clients_command, export_client_command,
                    erase_client_command, purge_command, send_test_sms_command, doctor_command,
                    audit_group):
        app.cli.add_command(command)


def command_group() -> FlaskGroup:
    from service import create_app

    group = FlaskGroup(create_app=functools.partial(create_app, serving=False),
                       help="Aftercare service commands.")
    group.add_command(_refusing_unsafe_settings(run_command))
    return group


def main() -> None:
    os.umask(UMASK)
    logs.configure(Config().LOG_LEVEL)
    command_group()()
if __name__ == "__main__":
    main()
