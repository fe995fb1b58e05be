"""Find a client (the list, its search, filters and paging) and keep their details up to date.
The query lives in care/clients.py; this module reads the request and writes the access log."""

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import ValidationError

from service import db
from service.care import audit
from service.care.clients import CHANNEL_CHOICES, DetailsError, Filters, change_details, search
from service.care.schemas import LANGUAGES, ClientIn, field_errors
from service.domain.roles import Permission
from service.models import Client, utcnow
from service.web.staff import bp, clinic, owned, page_number, requires
from service.web.staff.plain_errors import in_page_language

MAX_QUERY = 100
FIELDS = ("name", "phone", "email", "language", "channel_choice", "time_zone")


@bp.get("/clients")
@requires(Permission.VIEW_CLIENTS)
def clients():
    """A GET form, so a search is a link staff can go back to. The access log keeps what kind of
    search it was and which clients it showed, not the text typed (it may be a phone number)."""
    args = request.args
    q = args.get("q", "").strip()
    clinical = current_user.can(Permission.VIEW_CLINICAL)  # an escalation is clinical detail
    filters = Filters(escalated=clinical and args.get("escalated") == "1",
                      opted_out=args.get("opted_out") == "1", unbooked=args.get("unbooked") == "1")
    errors = {}
    if len(q) > MAX_QUERY:
        errors["q"] = _("is longer than %(num)s characters", num=MAX_QUERY)
    number, problem = page_number()
    if problem:
        errors["page"] = problem
    if errors:
        return render_template("web/staff/clients.html", q=q[:MAX_QUERY], filters=filters,
                               page=None, errors=errors, clinical=clinical), 400
    page = search(db.session(), clinic(), q, filters, number, utcnow())
    audit.record(db.session(), "clients_searched", clinic_id=current_user.clinic_id,
                 actor=f"staff:{current_user.id}", kind=page.kind, page=page.number,
                 filters=[name for name, on in vars(filters).items() if on],
                 found=[row.client.id for row in page.rows])
    db.session().commit()
    keep = {"q": q or None} | {name: 1 for name, on in vars(filters).items() if on}
    return render_template("web/staff/clients.html", q=q, filters=filters, page=page,
                           errors=errors, clinical=clinical, keep=keep)


@bp.route("/clients/<int:client_id>/details", methods=["GET", "POST"])
@requires(Permission.ENROL)
def client_details(client_id: int):
    """The client's details, checked as at enrolment (care/schemas.ClientIn), errors by field."""
    client = owned(Client, client_id)
    errors = {}
    if request.method == "POST":
        form = request.form
        choice = form.get("channel_choice") or None
        try:
            given = ClientIn.model_validate({
                "name": form.get("name", ""), "phone": form.get("phone") or None,
                "email": form.get("email") or None, "language": form.get("language", ""),
                "time_zone": form.get("time_zone", ""),
                "sms_consent": form.get("sms_consent") == "on"})
        except ValidationError as exc:
            errors = in_page_language(field_errors(exc))
            given = None
        if choice is not None and choice not in CHANNEL_CHOICES:
            errors["channel_choice"] = _("must be texts, email or both")
        if given and not errors:
            errors = _reachable(given, choice)
        if not errors:
            try:
                changed = change_details(db.session(), client, given, choice, utcnow(),
                                         actor=f"staff:{current_user.id}")
            except DetailsError as exc:
                errors = exc.errors
            else:
                db.session().commit()
                flash(_("Details saved.") if changed else _("Nothing changed."))
                return redirect(url_for("staff.client_page", client_id=client.id))
        db.session().rollback()
    values = request.form if errors else {field: getattr(client, field) for field in FIELDS}
    return render_template("web/staff/client_details.html", client=client, errors=errors,
                           values=values, languages=LANGUAGES,
                           choices=CHANNEL_CHOICES), 422 if errors else 200


def _reachable(given: ClientIn, choice: str | None) -> dict[str, str]:
    """A client keeps a way to get their aftercare, and a channel they chose is one they have."""
    if not given.phone and not given.email:
        return {"phone": _("give a phone or an email: without either the client gets nothing")}
    missing = {"sms": not given.phone, "email": not given.email}
    if choice and any(missing[c] for c in (("sms", "email") if choice == "both" else (choice,))):
        return {"channel_choice": _("needs a phone for texts and an email for email")}
    return {}
