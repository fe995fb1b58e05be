"""urgent_first: a clinic's share of the due texts, and a wake-up for the worker on urgent rows

Revision ID: 0006_urgent_first
Revises: 0005_client_safety_path
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_urgent_first'
down_revision: str | None = '0005_client_safety_path'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# service/outbox.py listens on this channel (URGENT_CHANNEL).
NOTIFY_URGENT = """
CREATE FUNCTION aftercare_notify_urgent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('aftercare_urgent', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER message_urgent_notify AFTER INSERT ON message
    FOR EACH ROW WHEN (NEW.priority = 0) EXECUTE FUNCTION aftercare_notify_urgent();
"""


def upgrade() -> None:
    # The claim's fair share per clinic: each clinic's due rows, oldest first.
    op.create_index('ix_message_due_clinic', 'message', ['clinic_id', 'priority', 'next_attempt_at'],
                    unique=False, postgresql_where=sa.text("status = 'pending'"),
                    sqlite_where=sa.text("status = 'pending'"))
    if op.get_bind().dialect.name == 'postgresql':
        # A worker LISTENs: an urgent row wakes it at once (notifications go out at commit, and
        # several in one transaction arrive as one).
        op.execute(NOTIFY_URGENT)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER message_urgent_notify ON message")
        op.execute("DROP FUNCTION aftercare_notify_urgent()")
    op.drop_index('ix_message_due_clinic', table_name='message',
                  postgresql_where=sa.text("status = 'pending'"),
                  sqlite_where=sa.text("status = 'pending'"))
