"""Treatment plans and their revision history.

`treatment_plan` holds the current state of a plan; its clinical content (protocol, goals, …) is JSON validated by
api.plans.schemas on the way in. `revision` counts every change: writers update a plan only
`WHERE id = :id AND revision = :expected` and add one `plan_revision` row per change, so a stale writer changes
nothing and the history holds every state the plan ever had (revision 1 records the initial values).
"""

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, text
from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field


class PlanStatus(StrEnum):
    draft = "draft"
    active = "active"
    paused = "paused"
    completed = "completed"
    discontinued = "discontinued"


class TreatmentPlan(SQLModel, table=True):
    __tablename__ = "treatment_plan"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'active', 'paused', 'completed', 'discontinued')",
                        name="ck_treatment_plan_status"),
        CheckConstraint("revision >= 1", name="ck_treatment_plan_revision"),
    )

    id: uuid.UUID = id_field()
    patient_id: uuid.UUID = Field(foreign_key="patient.id")
    status: PlanStatus = Field(sa_type=String(16))
    revision: int
    title: str = Field(max_length=200)
    indication: str = Field(max_length=1000)
    start_date: dt.date
    protocol: dict[str, Any] = Field(sa_type=JSON)
    goals: list[dict[str, Any]] = Field(sa_type=JSON)
    adjunct_therapies: list[dict[str, Any]] = Field(sa_type=JSON)
    assessments: list[dict[str, Any]] = Field(sa_type=JSON)
    safety: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # null: the organization's default thresholds
    prior_treatments: list[dict[str, Any]] = Field(sa_type=JSON)
    suitability: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # null: not assessed, cannot be activated
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: dt.datetime = instant_field(default_now=True)
    updated_by: uuid.UUID = Field(foreign_key="app_user.id")
    updated_at: dt.datetime = instant_field(default_now=True)


class PlanRevision(SQLModel, table=True):
    """One change to a plan: who, when, and each changed field's value before and after."""

    __tablename__ = "plan_revision"

    plan_id: uuid.UUID = Field(foreign_key="treatment_plan.id", primary_key=True)
    revision: int = Field(primary_key=True)
    kind: str = Field(sa_type=String(16))  # create | update | status
    changed_by: uuid.UUID = Field(foreign_key="app_user.id")
    changed_at: dt.datetime = instant_field(default_now=True)
    # [{"field": "goals", "before": [...], "after": [...]}, …]; before is null on creation.
    changes: list[dict[str, Any]] = Field(sa_type=JSON)
    reason: str | None = Field(default=None, max_length=1000)  # why the status changed, as the clinician put it
    # Activation despite listed contraindications: the codes overridden and the clinician's justification.
    override_reason: str | None = Field(default=None, max_length=1000)
    overridden_contraindications: list[str] | None = Field(default=None, sa_type=JSON)


# At most one active plan per patient, enforced by the database so that concurrent activations cannot both succeed.
Index("uq_treatment_plan_one_active", TreatmentPlan.patient_id, unique=True,
      postgresql_where=text("status = 'active'"), sqlite_where=text("status = 'active'"))
# A patient's plans, newest first (the list's keyset order).
Index("ix_treatment_plan_patient_created", TreatmentPlan.patient_id, TreatmentPlan.created_at, TreatmentPlan.id)
# Delta sync: a patient's plans in order of change (updated_since).
Index("ix_treatment_plan_patient_updated", TreatmentPlan.patient_id, TreatmentPlan.updated_at, TreatmentPlan.id)
