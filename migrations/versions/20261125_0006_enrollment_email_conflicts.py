"""Enrollment codes count the enrollments refused for a taken email, so a code is void after a few.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 13:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('enrollment_code', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_conflicts', sa.SmallInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('enrollment_code', schema=None) as batch_op:
        batch_op.drop_column('email_conflicts')
