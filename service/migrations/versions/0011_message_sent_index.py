"""message_sent_index: a clinic's texts by the time they went, for its daily send cap

Revision ID: 0011_message_sent_index
Revises: 0010_plain_wordings
Create Date: 2026-11-30 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_message_sent_index'
down_revision: str | None = '0010_plain_wordings'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The dispatcher counts a capped clinic's texts since its midnight once per batch: without
    # this, that count reads every message the clinic ever had, on the worker all clinics share.
    op.create_index('ix_message_clinic_sent', 'message', ['clinic_id', 'sent_at'], unique=False,
                    postgresql_where=sa.text('sent_at IS NOT NULL'),
                    sqlite_where=sa.text('sent_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_message_clinic_sent', table_name='message')
