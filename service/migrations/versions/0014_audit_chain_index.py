"""audit_chain_index: each clinic's audit chain read from its end in one index probe

Revision ID: 0014_audit_chain_index
Revises: 0013_staff_accounts
Create Date: 2026-11-30 20:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0014_audit_chain_index'
down_revision: str | None = '0013_staff_accounts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every audit write reads its clinic's last hash (service/care/audit.py): with clinic_id alone
    # that reads every row the clinic ever had, on each write.
    op.create_index('ix_audit_event_clinic_chain', 'audit_event', ['clinic_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_audit_event_clinic_chain', table_name='audit_event')
