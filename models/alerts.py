"""Clinician alerts: something about a patient needs a clinician's attention until acknowledged.

One alert per (source, kind): raising the same alert again for the same score or session is a no-op, so retries and
replays never duplicate it. An alert that names a plan (worsening from the plan's baseline) is also one per (plan,
kind) while open: a second is raised only after the first is acknowledged.
"""

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"


class AlertPriority(StrEnum):
    urgent = "urgent"  # same-day attention (PHQ-9 item 9, severe adverse events)
    high = "high"


class Alert(SQLModel, table=True):
    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("source_type", "source_id", "kind", name="uq_alert_source_kind"),)

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    patient_id: uuid.UUID = Field(foreign_key="patient.id")
    # phq9_item9_positive | <instrument>_worsening | assessment_overdue | severe_adverse_event | session_warning
    kind: str = Field(max_length=64)
    priority: AlertPriority = Field(sa_type=String(16))
    status: AlertStatus = Field(sa_type=String(16), default=AlertStatus.open)
    source_type: str = Field(max_length=16)  # score | session | schedule
    source_id: uuid.UUID
    # Set on alerts raised once per plan until acknowledged (`<instrument>_worsening`), for the partial unique index.
    plan_id: uuid.UUID | None = Field(default=None, foreign_key="treatment_plan.id")
    message: str = Field(max_length=500)
    raised_at: dt.datetime = instant_field(default_now=True)
    acknowledged_at: dt.datetime | None = instant_field(default=None)
    acknowledged_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    acknowledgement_note: str | None = Field(default=None, max_length=2000)


# Panels list a clinician's open alerts newest first; a patient's alerts are looked up by patient.
Index("ix_alert_org_status_raised", Alert.organization_id, Alert.status, Alert.raised_at, Alert.id)
Index("ix_alert_patient_status", Alert.patient_id, Alert.status)
# One open alert per (plan, kind) for the alerts that name a plan: two worsening scores stored at once, or a retry,
# raise one; after its acknowledgement the index no longer holds it, and the next worsening raises a new one.
Index("uq_alert_open_per_plan", Alert.plan_id, Alert.kind, unique=True,
      postgresql_where=text("status = 'open' AND plan_id IS NOT NULL"),
      sqlite_where=text("status = 'open' AND plan_id IS NOT NULL"))
