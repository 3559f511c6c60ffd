"""Worsening alerts: an alert may name its plan, and is then one per (plan, kind) while open.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 16:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN_WITH_PLAN = "status = 'open' AND plan_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan_id', sa.Uuid(), nullable=True))
        batch_op.create_foreign_key('fk_alert_plan_id_treatment_plan', 'treatment_plan', ['plan_id'], ['id'])
    op.create_index('uq_alert_open_per_plan', 'alert', ['plan_id', 'kind'], unique=True,
                    postgresql_where=sa.text(_OPEN_WITH_PLAN), sqlite_where=sa.text(_OPEN_WITH_PLAN))


def downgrade() -> None:
    op.drop_index('uq_alert_open_per_plan', table_name='alert')
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_constraint('fk_alert_plan_id_treatment_plan', type_='foreignkey')
        batch_op.drop_column('plan_id')
