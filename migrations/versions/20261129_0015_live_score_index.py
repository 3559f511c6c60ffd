"""A covering index of live scores by patient, instrument and time (charts, baselines, schedules, dashboard).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 17:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "deleted_at IS NULL"


def upgrade() -> None:
    op.create_index('ix_score_live_patient_instrument', 'score', ['patient_id', 'instrument', 'recorded_at', 'id'],
                    unique=False, postgresql_include=['total'], postgresql_where=sa.text(_LIVE),
                    sqlite_where=sa.text(_LIVE))


def downgrade() -> None:
    op.drop_index('ix_score_live_patient_instrument', table_name='score')
