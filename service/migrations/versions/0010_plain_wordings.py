"""plain_wordings: a clinic's own wording becomes plain words with {placeholders}, not Jinja

Revision ID: 0010_plain_wordings
Revises: 0009_clinic_senders
Create Date: 2026-12-10 09:00:00

A stored wording made only of words and `{{ variable }}` substitutions of the variables the
editor offered becomes the same words with `{placeholder}`s (client_name -> {first_name} ...).
Any other wording (tags, filters, expressions, a brace of its own) is dropped: that clinic's text
of that kind goes back to ours, and a warning names the clinic and the kind. Downgrade turns every
placeholder back into its `{{ variable }}`. The mapping is written out here, as it was when this
ran: a migration does not follow later code.
"""

import logging
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_plain_wordings'
down_revision: str | None = '0009_clinic_senders'  # same number, landed first
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

# Jinja variable -> placeholder; the appointment only in the appointment reminder.
PLACEHOLDERS = {"client_name": "first_name", "clinic_name": "clinic_name",
                "clinic_phone": "clinic_phone", "emergency_number": "emergency_number",
                "window_ends": "window_end", "appointment": "appointment", "page_url": "link"}
VARIABLES = {placeholder: variable for variable, placeholder in PLACEHOLDERS.items()}
APPOINTMENT_ONLY_IN = "appointment_reminder"

_VARIABLE = re.compile(r"\{\{ *(\w+) *\}\}")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

clinic = sa.table("clinic", sa.column("id", sa.Integer), sa.column("name", sa.String),
                  sa.column("plan_overrides", sa.JSON))


def to_plain(text: str, kind: str) -> str | None:
    """The plain wording of a Jinja one, or None when it is more than substitutions."""
    def placeholder(match: re.Match) -> str:
        name = PLACEHOLDERS.get(match[1])
        if name is None or (name == "appointment" and kind != APPOINTMENT_ONLY_IN):
            raise ValueError(match[1])
        return f"{{{name}}}"

    try:
        plain = _VARIABLE.sub(placeholder, text)
    except ValueError:
        return None
    words = _VARIABLE.sub("", text)
    return None if "{" in words or "}" in words else plain


def to_jinja(text: str) -> str:
    return _PLACEHOLDER.sub(lambda m: f"{{{{ {VARIABLES.get(m[1], m[1])} }}}}", text)


def _convert(convert) -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(clinic.c.id, clinic.c.name, clinic.c.plan_overrides)):
        overrides = row.plan_overrides or {}
        if not overrides.get("wording"):
            continue
        wording = {language: {kind: text for kind, text in
                              ((kind, convert(row, kind, text)) for kind, text in texts.items())
                              if text is not None}
                   for language, texts in overrides["wording"].items()}
        conn.execute(clinic.update().where(clinic.c.id == row.id)
                     .values(plan_overrides={**overrides, "wording": wording}))


def _upgrade_one(row, kind: str, text: str) -> str | None:
    plain = to_plain(text, kind) if isinstance(text, str) else None
    if plain is None:
        log.warning("clinic %s (%s): its %s wording is not plain words and placeholders; "
                    "ours is used until an owner words it again", row.id, row.name, kind)
    return plain


def upgrade() -> None:
    _convert(_upgrade_one)


def downgrade() -> None:
    _convert(lambda row, kind, text: to_jinja(text))
