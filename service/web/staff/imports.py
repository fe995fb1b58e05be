"""Clients from a CSV file, on the web (owners): the same reading and saving as
`aftercare import-clients` (care/client_import.py), in two steps. The upload is a dry run that
writes nothing and shows the CLI's row-by-row report; the confirm step imports. Between the two
the file travels in the form, signed (bound to the clinic, for 30 minutes), so nothing is kept on
the server and an edited file cannot be slipped into the confirm step."""

import io

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_number
from flask_babel import gettext as _
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from service import db
from service.care import audit, client_import
from service.domain.roles import Permission
from service.models import utcnow
from service.web.auth import sessions
from service.web.staff import bp, clinic, requires

MAX_BYTES = 200_000  # some 2,000 clients: a clinic's list, not a database dump
KEPT_FOR = 30 * 60  # seconds between the dry run and the confirm step


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="client-import")


@bp.get("/clients/import")
@sessions.recent_password()
@requires(Permission.SETTINGS)
def clients_import():
    return render_template("web/staff/import.html", columns=client_import.COLUMNS,
                           max_bytes=MAX_BYTES)


@bp.post("/clients/import")
@sessions.recent_password(back="staff.clients_import")
@requires(Permission.SETTINGS)
def clients_import_dry_run():
    """Reads and checks every row; writes nothing."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _report(error=_("file: choose a CSV file")), 422
    data = upload.stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        return _report(error=_("file: larger than %(num)s bytes; split it into smaller files",
                                     num=format_number(MAX_BYTES))), 413
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _report(error=_("file: not UTF-8 text (save it from the spreadsheet as CSV UTF-8)")), 422
    return _checked(text, dry_run=True)


@bp.post("/clients/import/confirm")
@sessions.recent_password(back="staff.clients_import")
@requires(Permission.SETTINGS)
def clients_import_confirm():
    try:
        kept = _signer().loads(request.form.get("upload", ""), max_age=KEPT_FOR)
    except BadSignature:  # also an expired one
        return _report(error=_("upload: expired or altered; upload the file again")), 422
    if kept.get("clinic") != current_user.clinic_id:
        return _report(error=_("upload: made at another clinic; upload the file again")), 422
    return _checked(kept["csv"], dry_run=False)


def _checked(text: str, dry_run: bool):
    """The report of every row, then (confirmed) the valid rows saved in one transaction, as the
    CLI's --skip-bad does: the owner saw the bad lines before confirming."""
    try:
        rows, problems = client_import.read(io.StringIO(text))
    except client_import.BadHeader as exc:
        return _report(error=_("file: %(problem)s", problem=exc)), 422
    if dry_run:
        upload = _signer().dumps({"clinic": current_user.clinic_id, "csv": text})
        return _report(rows=rows, problems=problems, upload=upload if rows else None)
    here, session = clinic(), db.session()
    try:
        count = client_import.save(session, here, rows, utcnow())
    except client_import.Conflict as exc:
        session.rollback()
        return _report(error=_("%(problem)s: nothing imported", problem=_said(exc.args[0]))), 422
    skipped = len({problem.line for problem in problems})
    audit.record(session, "clients_imported", clinic_id=here.id, actor=f"staff:{current_user.id}",
                 count=count, skipped=skipped)
    session.commit()
    flash(_("Imported %(count)s client(s), skipped %(num)s bad row(s).", count=count, num=skipped)
          if skipped else _("Imported %(count)s client(s).", count=count))
    return redirect(url_for("staff.clients_import"))


def _said(problem: client_import.Problem) -> str:
    """A line of the report in the page's language (the CLI prints str(problem), in English);
    reasons marked N_ in client_import are translated, others (pydantic's) stay as written."""
    return _("line %(line)s: %(field)s: %(reason)s", line=problem.line, field=problem.field,
             reason=_(problem.reason))


def _report(**context):
    return render_template("web/staff/import.html", columns=client_import.COLUMNS,
                           max_bytes=format_number(MAX_BYTES),
                           said=[_said(problem) for problem in context.get("problems", [])],
                           **context)
