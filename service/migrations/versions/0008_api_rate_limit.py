"""api_rate_limit: each API key counts its requests per minute

Revision ID: 0008_api_rate_limit
Revises: 0007_outbox_states
Create Date: 2026-12-09 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import service.models

revision: str = '0008_api_rate_limit'
down_revision: str | None = '0007_outbox_states'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('api_key') as batch:
        batch.add_column(sa.Column('window_start', service.models.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('window_count', sa.Integer(), server_default='0',
                                   nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('api_key') as batch:
        batch.drop_column('window_count')
        batch.drop_column('window_start')
