"""staff_accounts: server-side staff sessions, deactivation, the clinic's idle timeout, roles,
a tamper-evident audit trail

Revision ID: 0013_staff_accounts
Revises: 0012_api_key_scopes
Create Date: 2026-11-30 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.models

revision: str = '0013_staff_accounts'
down_revision: str | None = '0012_api_key_scopes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'staff_session',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=False),
        sa.Column('created_at', service.models.UTCDateTime(), nullable=False),
        sa.Column('last_seen_at', service.models.UTCDateTime(), nullable=False),
        sa.Column('reauth_at', service.models.UTCDateTime(), nullable=True),
        sa.Column('ended_at', service.models.UTCDateTime(), nullable=True),
        sa.Column('remote_addr', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_staff_session_staff_id', 'staff_session', ['staff_id'], unique=False)
    with op.batch_alter_table('staff_user') as batch:
        batch.add_column(sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))
    # "staff" was every non-owner: they read and acknowledge escalations, so they are clinicians.
    op.execute("UPDATE staff_user SET role = 'clinician' WHERE role = 'staff'")
    with op.batch_alter_table('clinic') as batch:
        batch.add_column(sa.Column('idle_timeout_minutes', sa.Integer(), nullable=False,
                                   server_default='30'))
    with op.batch_alter_table('audit_event') as batch:
        batch.add_column(sa.Column('remote_addr', sqlmodel.sql.sqltypes.AutoString(length=64),
                                   nullable=True))
        batch.add_column(sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_event') as batch:
        batch.drop_column('hash')
        batch.drop_column('remote_addr')
    with op.batch_alter_table('clinic') as batch:
        batch.drop_column('idle_timeout_minutes')
    op.execute("UPDATE staff_user SET role = 'staff' WHERE role <> 'owner'")
    with op.batch_alter_table('staff_user') as batch:
        batch.drop_column('active')
    op.drop_index('ix_staff_session_staff_id', table_name='staff_session')
    op.drop_table('staff_session')
