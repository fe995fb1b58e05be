"""staff_identity_and_inbox: a second factor (TOTP, recovery codes, a clinic's "require it"),
one-time email links (invitations, password resets), the inbox's unread state and staff replies

Revision ID: 0015_staff_identity_and_inbox
Revises: 0014_audit_chain_index
Create Date: 2026-11-30 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.models

revision: str = '0015_staff_identity_and_inbox'
down_revision: str | None = '0014_audit_chain_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The message kinds as of this revision (service/domain/messages.py); 0007 listed the ones before.
OLD_KINDS = ('window_start', 'hydration', 'heat', 'checkin', 'followup', 'appointment_reminder',
             'rebook_nudge', 'opt_out_confirmation', 'opt_in_confirmation', 'help',
             'checkin_thanks', 'concern_advice', 'urgent_advice', 'appointment_confirmed',
             'appointment_reschedule', 'clarify', 'page_link', 'staff_alert')
KINDS = OLD_KINDS + ('staff_reply', 'staff_invite', 'password_reset')


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _read_columns(batch) -> None:
    batch.add_column(sa.Column('read_at', service.models.UTCDateTime(), nullable=True))
    batch.add_column(sa.Column('read_by_id', sa.Integer(), nullable=True))


def upgrade() -> None:
    with op.batch_alter_table('clinic') as batch:
        batch.add_column(sa.Column('require_totp', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    with op.batch_alter_table('staff_user') as batch:
        batch.add_column(sa.Column('totp_secret', sqlmodel.sql.sqltypes.AutoString(length=64),
                                   nullable=True))
        batch.add_column(sa.Column('totp_last_step', sa.Integer(), nullable=True))
    op.create_table(
        'recovery_code',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('used_at', service.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_recovery_code_staff_id', 'recovery_code', ['staff_id'], unique=False)
    op.create_table(
        'staff_token',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=False),
        sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('created_at', service.models.UTCDateTime(), nullable=False),
        sa.Column('expires_at', service.models.UTCDateTime(), nullable=False),
        sa.Column('used_at', service.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_staff_token_staff_id', 'staff_token', ['staff_id'], unique=False)
    with op.batch_alter_table('message') as batch:
        batch.add_column(sa.Column('staff_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_message_staff_id', 'staff_user', ['staff_id'], ['id'])
        batch.drop_constraint('ck_message_kind', type_='check')
        batch.create_check_constraint('ck_message_kind', _one_of('kind', KINDS))
    with op.batch_alter_table('inbound_message') as batch:
        _read_columns(batch)
        batch.create_foreign_key('fk_inbound_message_read_by_id', 'staff_user', ['read_by_id'],
                                 ['id'])
    op.create_index('ix_inbound_message_clinic_received', 'inbound_message',
                    ['clinic_id', 'received_at'], unique=False)
    with op.batch_alter_table('check_in') as batch:
        _read_columns(batch)
        batch.create_foreign_key('fk_check_in_read_by_id', 'staff_user', ['read_by_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('check_in') as batch:
        batch.drop_constraint('fk_check_in_read_by_id', type_='foreignkey')
        batch.drop_column('read_by_id')
        batch.drop_column('read_at')
    op.drop_index('ix_inbound_message_clinic_received', table_name='inbound_message')
    with op.batch_alter_table('inbound_message') as batch:
        batch.drop_constraint('fk_inbound_message_read_by_id', type_='foreignkey')
        batch.drop_column('read_by_id')
        batch.drop_column('read_at')
    op.execute("DELETE FROM message WHERE kind IN ('staff_reply', 'staff_invite', 'password_reset')")
    with op.batch_alter_table('message') as batch:
        batch.drop_constraint('ck_message_kind', type_='check')
        batch.create_check_constraint('ck_message_kind', _one_of('kind', OLD_KINDS))
        batch.drop_constraint('fk_message_staff_id', type_='foreignkey')
        batch.drop_column('staff_id')
    op.drop_index('ix_staff_token_staff_id', table_name='staff_token')
    op.drop_table('staff_token')
    op.drop_index('ix_recovery_code_staff_id', table_name='recovery_code')
    op.drop_table('recovery_code')
    with op.batch_alter_table('staff_user') as batch:
        batch.drop_column('totp_last_step')
        batch.drop_column('totp_secret')
    with op.batch_alter_table('clinic') as batch:
        batch.drop_column('require_totp')
