"""api_key_scopes: what a key may do, when it expires, when it was last used

Revision ID: 0012_api_key_scopes
Revises: 0011_message_sent_index
Create Date: 2026-11-30 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.models

revision: str = '0012_api_key_scopes'
down_revision: str | None = '0011_message_sent_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every scope: a key made before scopes existed could do everything, and keeps doing it.
ALL_SCOPES = "enrol read acknowledge audit"


def upgrade() -> None:
    with op.batch_alter_table('api_key') as batch:
        batch.add_column(sa.Column('scopes', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False,
                                   server_default=ALL_SCOPES))
        batch.add_column(sa.Column('expires_at', service.models.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('last_used_at', service.models.UTCDateTime(), nullable=True))
    # The default filled the existing rows; a new key always names its scopes.
    with op.batch_alter_table('api_key') as batch:
        batch.alter_column('scopes', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('api_key') as batch:
        batch.drop_column('last_used_at')
        batch.drop_column('expires_at')
        batch.drop_column('scopes')
