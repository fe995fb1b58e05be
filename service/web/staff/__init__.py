"""The staff app: dashboard, enrolment, client pages and (owners) clinic settings. Every route
needs a login, names the permission it needs (`requires`) and only ever shows the staff member's
own clinic."""

from flask import Blueprint, abort, current_app, request
from flask_babel import gettext as _
from flask_login import current_user

from service import db
from service.care import scope
from service.domain.roles import Permission
from service.extensions import login_manager
from service.models import Clinic
from service.web import use_browser_language

bp = Blueprint("staff", __name__)
bp.before_request(use_browser_language)  # staff pages in the browser's language (English by default)


def requires(permission: Permission):
    """Names the permission a staff route needs (domain.roles' table says which roles have it).
    `require_login` checks it before the view runs; a route without one is refused to everyone,
    so a route that forgot it fails closed (and tests/test_roles.py names it)."""
    def mark(view):
        view.permission = permission
        return view
    return mark


@bp.before_request
def require_login():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    permission = getattr(current_app.view_functions.get(request.endpoint), "permission", None)
    if permission is None or not current_user.can(permission):
        abort(403, _("Your role does not allow this."))
    return None


def clinic() -> Clinic:
    """The staff member's own clinic: the only one any staff page shows."""
    return db.session().get(Clinic, current_user.clinic_id)


def owned(model, row_id: int):
    """The row if it belongs to the user's clinic; 404 otherwise (not 403: no hint it exists)."""
    row = scope.owned(db.session(), model, current_user.clinic_id, row_id)
    if row is None:
        abort(404)
    return row


MAX_PAGE = 9_999  # more is a mistyped link, not a page anyone pages to


def page_number() -> tuple[int, str | None]:
    """The `?page=` a list asks for (1 if none), read the same way by every list: a whole number
    from 1 to MAX_PAGE, or page 1 and the problem, which the view shows with a 400. A page past
    the end is the last page (domain/paging.py, where the list is counted)."""
    given = request.args.get("page", "1")
    if given.isascii() and given.isdigit() and 0 < int(given) <= MAX_PAGE:
        return int(given), None
    return 1, _("page: a whole number from 1.")


from service.web.staff import clients, imports, inbox, routes, settings  # noqa: E402,F401
