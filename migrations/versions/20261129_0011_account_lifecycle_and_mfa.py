"""Account lifecycle and two-factor sign-in: staff TOTP authenticators and recovery codes, the login session's
second factor, and the organization's require_staff_mfa setting.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 18:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'user_totp',
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('secret_encrypted', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_step', sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('user_id'),
    )
    op.create_table(
        'recovery_code',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['app_user.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_recovery_code_user_id'), 'recovery_code', ['user_id'], unique=False)
    with op.batch_alter_table('refresh_token') as batch_op:
        batch_op.add_column(sa.Column('mfa', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    with op.batch_alter_table('organization') as batch_op:
        batch_op.add_column(sa.Column('require_staff_mfa', sa.Boolean(), server_default=sa.text('false'),
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('organization') as batch_op:
        batch_op.drop_column('require_staff_mfa')
    with op.batch_alter_table('refresh_token') as batch_op:
        batch_op.drop_column('mfa')
    op.drop_index(op.f('ix_recovery_code_user_id'), table_name='recovery_code')
    op.drop_table('recovery_code')
    op.drop_table('user_totp')
