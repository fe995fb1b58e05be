"""client_email_index: an enrolment finds a client by email without scanning the clinic's clients

Revision ID: 0004_client_email_index
Revises: 0003_operations
Create Date: 2026-11-25 10:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0004_client_email_index'
down_revision: str | None = '0003_operations'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_client_clinic_email', 'client', ['clinic_id', 'email'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_client_clinic_email', table_name='client')
