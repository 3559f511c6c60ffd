"""Treatment plans: the current state of each plan and its revision history.

A partial unique index on patient_id WHERE status = 'active' lets the database refuse a second active plan per
patient, also when two activations race. Plans are listed per patient newest first.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 08:09:14.613123
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('treatment_plan',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('indication', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('protocol', sa.JSON(), nullable=False),
    sa.Column('goals', sa.JSON(), nullable=False),
    sa.Column('adjunct_therapies', sa.JSON(), nullable=False),
    sa.Column('assessments', sa.JSON(), nullable=False),
    sa.Column('safety', sa.JSON(), nullable=True),
    sa.Column('prior_treatments', sa.JSON(), nullable=False),
    sa.Column('suitability', sa.JSON(), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.Uuid(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('draft', 'active', 'paused', 'completed', 'discontinued')", name='ck_treatment_plan_status'),
    sa.CheckConstraint('revision >= 1', name='ck_treatment_plan_revision'),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['updated_by'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('treatment_plan', schema=None) as batch_op:
        batch_op.create_index('ix_treatment_plan_patient_created', ['patient_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('uq_treatment_plan_one_active', ['patient_id'], unique=True, postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))

    op.create_table('plan_revision',
    sa.Column('plan_id', sa.Uuid(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('changed_by', sa.Uuid(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('override_reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('overridden_contraindications', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['treatment_plan.id'], ),
    sa.PrimaryKeyConstraint('plan_id', 'revision')
    )


def downgrade() -> None:
    op.drop_table('plan_revision')
    with op.batch_alter_table('treatment_plan', schema=None) as batch_op:
        batch_op.drop_index('uq_treatment_plan_one_active', postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"))
        batch_op.drop_index('ix_treatment_plan_patient_created')

    op.drop_table('treatment_plan')
