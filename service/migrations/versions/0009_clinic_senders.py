"""clinic_senders: each clinic its own SMS sender, and a daily cap on its routine texts

Revision ID: 0009_clinic_senders
Revises: 0008_api_rate_limit
Create Date: 2026-12-09 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0009_clinic_senders'
down_revision: str | None = '0008_api_rate_limit'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite adds a constraint only by copying the table.
    with op.batch_alter_table('clinic') as batch:
        batch.add_column(sa.Column('sms_sender', sqlmodel.sql.sqltypes.AutoString(length=34), nullable=True))
        batch.add_column(sa.Column('daily_send_cap', sa.Integer(), nullable=True))
        # NULLs never collide: clinics without their own sender share the default.
        batch.create_unique_constraint('uq_clinic_sms_sender', ['sms_sender'])


def downgrade() -> None:
    with op.batch_alter_table('clinic') as batch:
        batch.drop_constraint('uq_clinic_sms_sender', type_='unique')
        batch.drop_column('daily_send_cap')
        batch.drop_column('sms_sender')
