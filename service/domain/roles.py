"""Staff roles and what each may do. Pure: this is the one permission table; every check, on a
route or in a page, reads it (a staff route names its permission with web.staff.requires)."""

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    CLINICIAN = "clinician"
    FRONT_DESK = "front_desk"
    READ_ONLY = "read_only"


class Permission(StrEnum):
    VIEW_CLIENTS = "view_clients"  # names, contacts, visits, appointments, messages sent
    VIEW_CLINICAL = "view_clinical"  # check-in answers, pain, escalations' reasons, replies' text
    ENROL = "enrol"  # enrol a client, keep their details (language, page link) up to date
    MANAGE_APPOINTMENTS = "manage_appointments"
    ACKNOWLEDGE = "acknowledge"
    REPLY = "reply"
    OVERRIDE_SCREENING = "override_screening"  # enrol despite a contraindication, with a reason
    EXPORT = "export"
    ERASE = "erase"
    SETTINGS = "settings"
    MANAGE_STAFF = "manage_staff"
    MANAGE_KEYS = "manage_keys"


_CLINICAL_READER = {Permission.VIEW_CLIENTS, Permission.VIEW_CLINICAL}
_DESK = {Permission.VIEW_CLIENTS, Permission.ENROL, Permission.MANAGE_APPOINTMENTS}

PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.CLINICIAN: frozenset(_CLINICAL_READER | _DESK | {Permission.ACKNOWLEDGE, Permission.REPLY}),
    Role.FRONT_DESK: frozenset(_DESK),  # no clinical detail
    Role.READ_ONLY: frozenset(_CLINICAL_READER),
}


def allows(role: str, permission: str) -> bool:
    """Whether a role may; an unknown role (a row no migration knew) may do nothing."""
    return role in PERMISSIONS and Permission(permission) in PERMISSIONS[Role(role)]
