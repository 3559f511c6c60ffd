"""The dashboard's reads from indexes alone: a plan's first signed session, and a patient's recent scores of every
instrument (bench/README.md, 2026-11-30).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 11:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SIGNED = "status = 'signed'"


def upgrade() -> None:
    op.create_index('ix_dosing_session_signed_plan_started', 'dosing_session', ['patient_id', 'plan_id', 'started_at'],
                    unique=False, postgresql_where=sa.text(_SIGNED), sqlite_where=sa.text(_SIGNED))
    # The same key with the columns the recent window reads; SQLite has no INCLUDE and keeps the plain index.
    op.drop_index('ix_score_patient_recorded', table_name='score')
    op.create_index('ix_score_patient_recorded', 'score', ['patient_id', 'recorded_at', 'id'], unique=False,
                    postgresql_include=['instrument', 'total', 'deleted_at'])


def downgrade() -> None:
    op.drop_index('ix_score_patient_recorded', table_name='score')
    op.create_index('ix_score_patient_recorded', 'score', ['patient_id', 'recorded_at', 'id'], unique=False)
    op.drop_index('ix_dosing_session_signed_plan_started', table_name='dosing_session')
