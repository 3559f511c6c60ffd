"""The append-only audit log. Database triggers (see the initial migration) refuse UPDATE and DELETE."""

import datetime as dt
import uuid

from sqlalchemy import Index, String
from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"

    id: uuid.UUID = id_field()
    at: dt.datetime = instant_field(default_now=True)
    organization_id: uuid.UUID | None = Field(default=None)
    actor_id: uuid.UUID | None = Field(default=None)
    actor_type: str = Field(sa_type=String(16))  # user | api_client | anonymous | system
    action: str = Field(max_length=64)  # e.g. patient.read, auth.login_failed
    outcome: str = Field(sa_type=String(16))  # success | denied
    resource_type: str | None = Field(default=None, max_length=64)
    resource_id: str | None = Field(default=None, max_length=64)
    patient_id: uuid.UUID | None = Field(default=None)
    request_id: str | None = Field(default=None, max_length=64)


Index("ix_audit_event_org_at", AuditEvent.organization_id, AuditEvent.at, AuditEvent.id)
Index("ix_audit_event_patient_at", AuditEvent.patient_id, AuditEvent.at)
Index("ix_audit_event_actor_at", AuditEvent.actor_id, AuditEvent.at)
