"""The staff app: dashboard, enrolment, client pages and (owners) clinic settings. Every route
needs a login and only ever shows the staff member's own clinic."""

from flask import Blueprint, abort
from flask_login import current_user

from service import db
from service.care import scope
from service.extensions import login_manager
from service.models import Clinic

bp = Blueprint("staff", __name__)


@bp.before_request
def require_login():
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
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


def require_owner() -> None:
    if not current_user.is_owner:
        abort(403, "Only the clinic owner can do this.")


from service.web.staff import routes, settings  # noqa: E402,F401
