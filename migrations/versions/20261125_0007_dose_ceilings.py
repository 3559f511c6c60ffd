"""Dose ceilings of every session as organization settings, with domain.md's defaults.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 13:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('esketamine_max_mg', sa.Float(), server_default='84.0', nullable=False))
        batch_op.add_column(sa.Column('ketamine_parenteral_max_mg_per_kg', sa.Float(), server_default='1.0',
                                      nullable=False))
        batch_op.add_column(sa.Column('ketamine_oral_max_mg_per_kg', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('ketamine_sublingual_max_mg_per_kg', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('ketamine_intranasal_max_mg_per_kg', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_column('ketamine_intranasal_max_mg_per_kg')
        batch_op.drop_column('ketamine_sublingual_max_mg_per_kg')
        batch_op.drop_column('ketamine_oral_max_mg_per_kg')
        batch_op.drop_column('ketamine_parenteral_max_mg_per_kg')
        batch_op.drop_column('esketamine_max_mg')
