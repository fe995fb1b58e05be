"""screening_reviews: the contraindication checklist kept per visit, a review item for each one
ticked (and an override request the owner approves), the clinic's address

Revision ID: 0016_screening_reviews
Revises: 0015_staff_identity_and_inbox
Create Date: 2026-11-30 21:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import service.models

revision: str = '0016_screening_reviews'
down_revision: str | None = '0015_staff_identity_and_inbox'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('clinic') as batch:
        batch.add_column(sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=200),
                                   nullable=True))
    with op.batch_alter_table('visit') as batch:
        batch.add_column(sa.Column('contraindications', sa.JSON(), nullable=True))
    op.create_table(
        'screening_review',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('clinic_id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.Integer(), nullable=False),
        sa.Column('visit_id', sa.Integer(), nullable=True),
        sa.Column('contraindications', sa.JSON(), nullable=False),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('requested_by_id', sa.Integer(), nullable=True),
        sa.Column('request_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_at', service.models.UTCDateTime(), nullable=True),
        sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column('created_at', service.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['clinic_id'], ['clinic.id']),
        sa.ForeignKeyConstraint(['client_id'], ['client.id']),
        sa.ForeignKeyConstraint(['visit_id'], ['visit.id']),
        sa.ForeignKeyConstraint(['requested_by_id'], ['staff_user.id']),
        sa.ForeignKeyConstraint(['decided_by_id'], ['staff_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_screening_review_clinic_id', 'screening_review', ['clinic_id'], unique=False)
    op.create_index('ix_screening_review_client_id', 'screening_review', ['client_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_screening_review_client_id', table_name='screening_review')
    op.drop_index('ix_screening_review_clinic_id', table_name='screening_review')
    op.drop_table('screening_review')
    with op.batch_alter_table('visit') as batch:
        batch.drop_column('contraindications')
    with op.batch_alter_table('clinic') as batch:
        batch.drop_column('address')
