"""`aftercare worker`: the jobs package adds its command to the `aftercare` group as a Flask CLI
plugin ([project.entry-points."flask.commands"] in pyproject.toml), so service never imports jobs."""

import click
from flask import current_app
from flask.cli import with_appcontext

from jobs import worker
from service.cli import check_can_serve


@click.command("worker")
@with_appcontext
def worker_command() -> None:
    """Run the worker: dispatch due messages and reap stale claims, until stopped."""
    check_can_serve(current_app.extensions["aftercare.config"])
    worker.run(current_app)
