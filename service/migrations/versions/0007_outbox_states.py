"""outbox_states: the database refuses a message status or kind the service does not know

Revision ID: 0007_outbox_states
Revises: 0006_urgent_first
Create Date: 2026-12-09 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0007_outbox_states'
down_revision: str | None = '0006_urgent_first'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The values as of this revision (service/domain/messages.py): a later one that adds a value
# replaces its constraint.
STATUSES = ('pending', 'claimed', 'sent', 'delivered', 'undelivered', 'failed', 'cancelled',
            'skipped')
KINDS = ('window_start', 'hydration', 'heat', 'checkin', 'followup', 'appointment_reminder',
         'rebook_nudge', 'opt_out_confirmation', 'opt_in_confirmation', 'help', 'checkin_thanks',
         'concern_advice', 'urgent_advice', 'appointment_confirmed', 'appointment_reschedule',
         'clarify', 'page_link', 'staff_alert')


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    # Batch mode: SQLite adds a CHECK only by copying the table (PostgreSQL alters it in place).
    with op.batch_alter_table('message') as batch:
        batch.create_check_constraint('ck_message_status', _one_of('status', STATUSES))
        batch.create_check_constraint('ck_message_kind', _one_of('kind', KINDS))


def downgrade() -> None:
    with op.batch_alter_table('message') as batch:
        batch.drop_constraint('ck_message_kind', type_='check')
        batch.drop_constraint('ck_message_status', type_='check')
