"""Clinician alerts: something about a patient needs a clinician's attention until acknowledged.

One alert per (source, kind): raising the same alert again for the same score or session is a no-op, so retries and
replays never duplicate it.
"""

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import Index, String, UniqueConstraint
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
    kind: str = Field(max_length=64)  # phq9_item9_positive | severe_adverse_event | session_warning
    priority: AlertPriority = Field(sa_type=String(16))
    status: AlertStatus = Field(sa_type=String(16), default=AlertStatus.open)
    source_type: str = Field(max_length=16)  # score | session
    source_id: uuid.UUID
    message: str = Field(max_length=500)
    raised_at: dt.datetime = instant_field(default_now=True)
    acknowledged_at: dt.datetime | None = instant_field(default=None)
    acknowledged_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    acknowledgement_note: str | None = Field(default=None, max_length=2000)


# Panels list a clinician's open alerts newest first; a patient's alerts are looked up by patient.
Index("ix_alert_org_status_raised", Alert.organization_id, Alert.status, Alert.raised_at, Alert.id)
Index("ix_alert_patient_status", Alert.patient_id, Alert.status)
