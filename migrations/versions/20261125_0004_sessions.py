"""Supervised dosing sessions, their addenda, and the organization's default pre-dose blood-pressure thresholds.

A signed session is a closed clinical record and addenda are append-only: triggers refuse UPDATE and DELETE of a
signed `dosing_session` row and of any `session_addendum` row, on PostgreSQL and SQLite, so no code path can change
what a clinician signed. The organization's thresholds (160/100 unless changed) apply to sessions whose plan sets
no `safety`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 08:26:01.816147
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dosing_session',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('plan_id', sa.Uuid(), nullable=True),
    sa.Column('unplanned_reason', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
    sa.Column('supervising_clinician_id', sa.Uuid(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('medication', sa.String(length=16), nullable=False),
    sa.Column('route', sa.String(length=16), nullable=False),
    sa.Column('dose_mg', sa.Float(), nullable=False),
    sa.Column('weight_kg', sa.Float(), nullable=True),
    sa.Column('vitals', sa.JSON(), nullable=False),
    sa.Column('dissociation_cadss', sa.Integer(), nullable=True),
    sa.Column('sedation_moaas', sa.Integer(), nullable=True),
    sa.Column('pre_suds', sa.Integer(), nullable=True),
    sa.Column('post_suds', sa.Integer(), nullable=True),
    sa.Column('adverse_events', sa.JSON(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('discharge', sa.JSON(), nullable=True),
    sa.Column('warnings', sa.JSON(), nullable=False),
    sa.Column('has_warnings', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.Uuid(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signed_by', sa.Uuid(), nullable=True),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status = 'signed' AND signed_by IS NOT NULL AND signed_at IS NOT NULL) OR (status = 'draft' AND signed_by IS NULL AND signed_at IS NULL)", name='ck_dosing_session_signature'),
    sa.CheckConstraint("status IN ('draft', 'signed')", name='ck_dosing_session_status'),
    sa.CheckConstraint('plan_id IS NOT NULL OR unplanned_reason IS NOT NULL', name='ck_dosing_session_planned'),
    sa.CheckConstraint('revision >= 1', name='ck_dosing_session_revision'),
    sa.ForeignKeyConstraint(['created_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['patient_id'], ['patient.id'], ),
    sa.ForeignKeyConstraint(['plan_id'], ['treatment_plan.id'], ),
    sa.ForeignKeyConstraint(['signed_by'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['supervising_clinician_id'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['updated_by'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dosing_session', schema=None) as batch_op:
        batch_op.create_index('ix_dosing_session_flagged', ['patient_id', 'started_at'], unique=False, postgresql_where=sa.text('has_warnings'), sqlite_where=sa.text('has_warnings'))
        batch_op.create_index('ix_dosing_session_patient_started', ['patient_id', 'started_at', 'id'], unique=False)

    op.create_table('session_addendum',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['session_id'], ['dosing_session.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('session_addendum', schema=None) as batch_op:
        batch_op.create_index('ix_session_addendum_session', ['session_id', 'created_at', 'id'], unique=False)

    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('default_max_systolic', sa.SmallInteger(), server_default='160', nullable=False))
        batch_op.add_column(sa.Column('default_max_diastolic', sa.SmallInteger(), server_default='100', nullable=False))

    _protect_signed_records()



def downgrade() -> None:
    _unprotect_signed_records()
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_column('default_max_diastolic')
        batch_op.drop_column('default_max_systolic')

    with op.batch_alter_table('session_addendum', schema=None) as batch_op:
        batch_op.drop_index('ix_session_addendum_session')

    op.drop_table('session_addendum')
    with op.batch_alter_table('dosing_session', schema=None) as batch_op:
        batch_op.drop_index('ix_dosing_session_patient_started')
        batch_op.drop_index('ix_dosing_session_flagged', postgresql_where=sa.text('has_warnings'), sqlite_where=sa.text('has_warnings'))

    op.drop_table('dosing_session')


SIGNED_IS_FINAL = "a signed dosing session cannot be changed; add an addendum"
ADDENDA_APPEND_ONLY = "session_addendum is append-only"


def _protect_signed_records() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION dosing_session_signed_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF OLD.status = 'signed' THEN
                    RAISE EXCEPTION '{SIGNED_IS_FINAL}';
                END IF;
                IF TG_OP = 'DELETE' THEN
                    RETURN OLD;
                END IF;
                RETURN NEW;
            END $$;
            """
        )
        op.execute(
            "CREATE TRIGGER dosing_session_signed_is_final BEFORE UPDATE OR DELETE ON dosing_session "
            "FOR EACH ROW EXECUTE FUNCTION dosing_session_signed_is_final()"
        )
        op.execute(
            f"""
            CREATE FUNCTION session_addendum_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{ADDENDA_APPEND_ONLY}';
            END $$;
            """
        )
        op.execute(
            "CREATE TRIGGER session_addendum_append_only BEFORE UPDATE OR DELETE ON session_addendum "
            "FOR EACH ROW EXECUTE FUNCTION session_addendum_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER dosing_session_signed_no_{verb.lower()} BEFORE {verb} ON dosing_session "
                f"WHEN OLD.status = 'signed' BEGIN SELECT RAISE(ABORT, '{SIGNED_IS_FINAL}'); END"
            )
            op.execute(
                f"CREATE TRIGGER session_addendum_no_{verb.lower()} BEFORE {verb} ON session_addendum "
                f"BEGIN SELECT RAISE(ABORT, '{ADDENDA_APPEND_ONLY}'); END"
            )


def _unprotect_signed_records() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS session_addendum_append_only ON session_addendum")
        op.execute("DROP FUNCTION IF EXISTS session_addendum_append_only()")
        op.execute("DROP TRIGGER IF EXISTS dosing_session_signed_is_final ON dosing_session")
        op.execute("DROP FUNCTION IF EXISTS dosing_session_signed_is_final()")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS session_addendum_no_{verb}")
            op.execute(f"DROP TRIGGER IF EXISTS dosing_session_signed_no_{verb}")
