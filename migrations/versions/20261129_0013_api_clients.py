"""API clients (OAuth client credentials) and integration-entered scores; the export's index by change time.

A score entered by an API client names the client (`entered_by_client`) instead of a login, so `entered_by` may
now be null. `ix_score_updated` serves the organization-wide bulk export, which walks scores by change time.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 18:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'api_client',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('organization_id', sa.Uuid(), nullable=False),
        sa.Column('client_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('secret_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('scopes', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.Uuid(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_by', sa.Uuid(), nullable=True),
        sa.Column('last_token_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], ),
        sa.ForeignKeyConstraint(['organization_id'], ['organization.id'], ),
        sa.ForeignKeyConstraint(['revoked_by'], ['app_user.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('client_id'),
    )
    op.create_index(op.f('ix_api_client_organization_id'), 'api_client', ['organization_id'], unique=False)
    with op.batch_alter_table('score', schema=None) as batch_op:
        batch_op.alter_column('entered_by', existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column('entered_by_client', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key('fk_score_entered_by_client', 'api_client', ['entered_by_client'], ['id'])
        batch_op.create_index('ix_score_updated', ['updated_at', 'id'], unique=False)


def downgrade() -> None:
    # Integration-entered scores have no login to name: they cannot survive the downgrade.
    op.execute("DELETE FROM score WHERE entered_by IS NULL")
    with op.batch_alter_table('score', schema=None) as batch_op:
        batch_op.drop_index('ix_score_updated')
        batch_op.drop_constraint('fk_score_entered_by_client', type_='foreignkey')
        batch_op.drop_column('entered_by_client')
        batch_op.alter_column('entered_by', existing_type=sa.Uuid(), nullable=False)
    op.drop_index(op.f('ix_api_client_organization_id'), table_name='api_client')
    op.drop_table('api_client')
