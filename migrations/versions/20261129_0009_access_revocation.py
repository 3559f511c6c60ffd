"""Access-token revocations: deactivated users, revoked API clients and ended login sessions.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 16:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'access_revocation',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('subject_type', sa.String(length=16), nullable=False),
        sa.Column('subject_id', sa.Uuid(), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_access_revocation_expires_at'), 'access_revocation', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_access_revocation_expires_at'), table_name='access_revocation')
    op.drop_table('access_revocation')
