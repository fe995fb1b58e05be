"""client_safety_path: channel choice, revocable links, reply language, red flags and form ids on
check-ins

Revision ID: 0005_client_safety_path
Revises: 0004_client_email_index
Create Date: 2026-11-30 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0005_client_safety_path'
down_revision: str | None = '0004_client_email_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('clinic') as batch:
        batch.add_column(sa.Column('both_channels', sa.Boolean(), server_default=sa.false(),
                                   nullable=False))
    with op.batch_alter_table('client') as batch:
        batch.add_column(sa.Column('channel_choice', sqlmodel.sql.sqltypes.AutoString(length=8),
                                   nullable=True))
        batch.add_column(sa.Column('link_version', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('inbound_message') as batch:
        batch.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=5),
                                   nullable=True))
    with op.batch_alter_table('check_in') as batch:
        batch.add_column(sa.Column('red_flags', sa.JSON(), server_default='[]', nullable=False))
        batch.add_column(sa.Column('form_id', sqlmodel.sql.sqltypes.AutoString(length=64),
                                   nullable=True))
        batch.create_unique_constraint('uq_check_in_form_id', ['form_id'])


def downgrade() -> None:
    with op.batch_alter_table('check_in') as batch:
        batch.drop_constraint('uq_check_in_form_id', type_='unique')
        batch.drop_column('form_id')
        batch.drop_column('red_flags')
    with op.batch_alter_table('inbound_message') as batch:
        batch.drop_column('language')
    with op.batch_alter_table('client') as batch:
        batch.drop_column('link_version')
        batch.drop_column('channel_choice')
    with op.batch_alter_table('clinic') as batch:
        batch.drop_column('both_channels')
