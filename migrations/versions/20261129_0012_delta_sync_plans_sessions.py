"""Delta sync of plans and sessions: indexes on (patient_id, updated_at, id), and a signed session's `updated_at` may
move forward when an addendum is added.

`GET /v1/patients/{patient_id}/plans|sessions?updated_since=` orders a patient's records by their change time, as
score lists do. An addendum changes what the care team's session list shows, so it stamps its session's
`updated_at`; the triggers of migration 0004 refused any UPDATE of a signed session, so they now let one through
that changes nothing but `updated_at`, and only forward. Every other column of a signed session stays as signed.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 10:00:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNED_IS_FINAL = "a signed dosing session cannot be changed; add an addendum"
# Every column of dosing_session but updated_at, as of this revision (SQLite triggers must name them; PostgreSQL
# compares whole rows, so a column added later is protected there without naming it).
FROZEN_COLUMNS = (
    "id", "patient_id", "status", "revision", "plan_id", "unplanned_reason", "supervising_clinician_id", "started_at",
    "ended_at", "medication", "route", "dose_mg", "weight_kg", "vitals", "dissociation_cadss", "sedation_moaas",
    "pre_suds", "post_suds", "adverse_events", "notes", "discharge", "warnings", "has_warnings", "created_by",
    "created_at", "updated_by", "signed_by", "signed_at",
)


def upgrade() -> None:
    # Plain CREATE INDEX, not a batch operation: on SQLite a batch may rebuild the table and lose its triggers.
    op.create_index('ix_treatment_plan_patient_updated', 'treatment_plan', ['patient_id', 'updated_at', 'id'])
    op.create_index('ix_dosing_session_patient_updated', 'dosing_session', ['patient_id', 'updated_at', 'id'])
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_function(
            "IF OLD.status = 'signed' AND (TG_OP = 'DELETE' OR NEW.updated_at < OLD.updated_at "
            "OR (to_jsonb(NEW) - 'updated_at') IS DISTINCT FROM (to_jsonb(OLD) - 'updated_at')) THEN"
        )
    else:
        changed = " OR ".join(f"NEW.{column} IS NOT OLD.{column}" for column in FROZEN_COLUMNS)
        _sqlite_update_trigger(f"OLD.status = 'signed' AND ({changed} OR NEW.updated_at < OLD.updated_at)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_function("IF OLD.status = 'signed' THEN")
    else:
        _sqlite_update_trigger("OLD.status = 'signed'")
    op.drop_index('ix_dosing_session_patient_updated', table_name='dosing_session')
    op.drop_index('ix_treatment_plan_patient_updated', table_name='treatment_plan')


def _postgresql_function(refuse_when: str) -> None:
    # The trigger (migration 0004) calls the function by name: replacing the function is enough.
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION dosing_session_signed_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {refuse_when}
                RAISE EXCEPTION '{SIGNED_IS_FINAL}';
            END IF;
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            RETURN NEW;
        END $$;
        """
    )


def _sqlite_update_trigger(refuse_when: str) -> None:
    op.execute("DROP TRIGGER IF EXISTS dosing_session_signed_no_update")
    op.execute(
        f"CREATE TRIGGER dosing_session_signed_no_update BEFORE UPDATE ON dosing_session "
        f"WHEN {refuse_when} BEGIN SELECT RAISE(ABORT, '{SIGNED_IS_FINAL}'); END"
    )
