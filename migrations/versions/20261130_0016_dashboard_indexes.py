"""The dashboard's reads from indexes alone: a plan's first signed session, and a patient's recent scores of every
instrument (bench/README.md, 2026-11-30).

On PostgreSQL the indexes are built CONCURRENTLY, outside the migration's transaction: the score table keeps taking
phones' scores while they build (a plain CREATE INDEX blocks writes to the table for the whole build, minutes on a
large one). The wider ix_score_patient_recorded is built beside the old one, which is dropped only then, so lists
and sync never lose their index. If a concurrent build fails it leaves an INVALID index: drop it and migrate again.

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
_RECORDED = ['patient_id', 'recorded_at', 'id']
_CARRIED = ['instrument', 'total', 'deleted_at']


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        # SQLite has no INCLUDE: ix_score_patient_recorded stays as it is.
        op.create_index('ix_dosing_session_signed_plan_started', 'dosing_session',
                        ['patient_id', 'plan_id', 'started_at'], unique=False, sqlite_where=sa.text(_SIGNED))
        return
    with op.get_context().autocommit_block():
        op.create_index('ix_dosing_session_signed_plan_started', 'dosing_session',
                        ['patient_id', 'plan_id', 'started_at'], unique=False, postgresql_where=sa.text(_SIGNED),
                        postgresql_concurrently=True, if_not_exists=True)
        op.create_index('ix_score_patient_recorded_0016', 'score', _RECORDED, unique=False,
                        postgresql_include=_CARRIED, postgresql_concurrently=True, if_not_exists=True)
        op.drop_index('ix_score_patient_recorded', table_name='score', postgresql_concurrently=True,
                      if_exists=True)
    op.execute('ALTER INDEX ix_score_patient_recorded_0016 RENAME TO ix_score_patient_recorded')


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        op.drop_index('ix_dosing_session_signed_plan_started', table_name='dosing_session')
        return
    with op.get_context().autocommit_block():
        op.create_index('ix_score_patient_recorded_0015', 'score', _RECORDED, unique=False,
                        postgresql_concurrently=True, if_not_exists=True)
        op.drop_index('ix_score_patient_recorded', table_name='score', postgresql_concurrently=True,
                      if_exists=True)
        op.drop_index('ix_dosing_session_signed_plan_started', table_name='dosing_session',
                      postgresql_concurrently=True, if_exists=True)
    op.execute('ALTER INDEX ix_score_patient_recorded_0015 RENAME TO ix_score_patient_recorded')
