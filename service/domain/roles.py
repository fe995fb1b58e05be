"""Staff roles. Pure: the permission table each role grants lives here too, so every check reads
one table."""

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    CLINICIAN = "clinician"
    FRONT_DESK = "front_desk"
    READ_ONLY = "read_only"
