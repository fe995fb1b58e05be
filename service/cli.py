"""The `aftercare` command: Flask's CLI (run, shell, routes, db) plus the service's own commands."""

import secrets
from datetime import time

import click
from argon2 import PasswordHasher
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlmodel import Session, select

from service import apikeys, db
from service.enrolment import enrol
from service.models import Clinic, StaffUser, utcnow
from service.schemas import VisitIn

DEMO_CLINIC = "Demo Back Walking Studio"


@click.command("worker")
@with_appcontext
def worker_command() -> None:
    """Run the worker: dispatch due messages and reap stale claims, until stopped."""
    from jobs.worker import run

    run(current_app)


@click.command("create-api-key")
@with_appcontext
@click.argument("clinic_id", type=int)
@click.option("--name", default="booking system", show_default=True)
def create_api_key_command(clinic_id: int, name: str) -> None:
    """Create an API key for a clinic; it is printed once and stored only as a digest."""
    with Session(db.engine()) as session:
        clinic = session.get(Clinic, clinic_id)
        if clinic is None:
            raise click.ClickException(f"no clinic with id {clinic_id}")
        click.echo(apikeys.issue(session, clinic, name))


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
                          password_hash=PasswordHasher().hash(password), role="owner"))
    session.commit()
    key = apikeys.issue(session, clinic, "demo")
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


def init_app(app: Flask) -> None:
    for command in (worker_command, create_api_key_command, demo_command):
        app.cli.add_command(command)


def main() -> None:
    from service import create_app

    FlaskGroup(create_app=create_app, help="Aftercare service commands.")()
if __name__ == "__main__":
    main()
