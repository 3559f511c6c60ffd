"""Supervised dosing sessions and their addenda (docs/sessions.md).

The word "session" names database sessions everywhere else in this codebase, so the tables are `dosing_session`
and `session_addendum`. A session is a draft while clinicians document it; signing makes it a closed clinical
record. Database triggers (migration 0004) refuse any UPDATE or DELETE of a signed session and of addenda, so the
record stays as signed whatever path writes to it; corrections are addenda. The one exception (migration 0012): an
addendum moves its signed session's `updated_at` forward, so that delta sync hands the session out again; nothing
else of a signed row can change.

`warnings` are computed by the server (api.sessions.warnings) on every draft edit and frozen at signing;
`has_warnings` repeats "warnings is not empty" as an indexed column so a later alerts feature can find flagged
sessions (severe adverse events are one kind of warning) without reading JSON.
"""

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String, Text, text
from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field


class SessionStatus(StrEnum):
    draft = "draft"
    signed = "signed"


class DosingSession(SQLModel, table=True):
    __tablename__ = "dosing_session"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'signed')", name="ck_dosing_session_status"),
        CheckConstraint("revision >= 1", name="ck_dosing_session_revision"),
        # Signed exactly when a signer and a signing time are recorded.
        CheckConstraint(
            "(status = 'signed' AND signed_by IS NOT NULL AND signed_at IS NOT NULL) OR "
            "(status = 'draft' AND signed_by IS NULL AND signed_at IS NULL)",
            name="ck_dosing_session_signature",
        ),
        # Linked to a plan, or explicitly unplanned with a reason.
        CheckConstraint("plan_id IS NOT NULL OR unplanned_reason IS NOT NULL", name="ck_dosing_session_planned"),
    )

    id: uuid.UUID = id_field()
    patient_id: uuid.UUID = Field(foreign_key="patient.id")
    status: SessionStatus = Field(sa_type=String(16))
    revision: int
    plan_id: uuid.UUID | None = Field(default=None, foreign_key="treatment_plan.id")
    unplanned_reason: str | None = Field(default=None, max_length=1000)
    supervising_clinician_id: uuid.UUID = Field(foreign_key="app_user.id")
    started_at: dt.datetime = instant_field()
    ended_at: dt.datetime | None = instant_field(default=None)
    medication: str = Field(sa_type=String(16))
    route: str = Field(sa_type=String(16))
    dose_mg: float
    weight_kg: float | None = None
    vitals: list[dict[str, Any]] = Field(sa_type=JSON)  # [{at, phase, systolic, diastolic, heart_rate, spo2, …}]
    dissociation_cadss: int | None = None
    sedation_moaas: int | None = None
    pre_suds: int | None = None
    post_suds: int | None = None
    adverse_events: list[dict[str, Any]] = Field(sa_type=JSON)  # [{kind, severity, action, description, at}]
    notes: str | None = Field(default=None, sa_type=Text)  # clinician-only
    discharge: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # {at, criteria_met, accompanied_by}
    warnings: list[dict[str, Any]] = Field(sa_type=JSON)  # [{code, message}], server-computed
    has_warnings: bool
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: dt.datetime = instant_field(default_now=True)
    updated_by: uuid.UUID = Field(foreign_key="app_user.id")
    updated_at: dt.datetime = instant_field(default_now=True)
    signed_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    signed_at: dt.datetime | None = instant_field(default=None)


class SessionAddendum(SQLModel, table=True):
    """A correction or later observation appended to a signed session: append-only, with its author and time."""

    __tablename__ = "session_addendum"

    id: uuid.UUID = id_field()
    session_id: uuid.UUID = Field(foreign_key="dosing_session.id")
    text: str = Field(sa_type=Text)
    author_id: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: dt.datetime = instant_field(default_now=True)


# A patient's sessions, newest started first (the list's keyset order).
Index("ix_dosing_session_patient_started", DosingSession.patient_id, DosingSession.started_at, DosingSession.id)
# Delta sync: a patient's sessions in order of change (updated_since); an addendum stamps its session's updated_at.
Index("ix_dosing_session_patient_updated", DosingSession.patient_id, DosingSession.updated_at, DosingSession.id)
# The first signed session of a plan (the first dose, from which charts, the dashboard and the worsening alert
# count): one probe of this index alone, where the patient's index had every session's row read and filtered.
Index("ix_dosing_session_signed_plan_started", DosingSession.patient_id, DosingSession.plan_id,
      DosingSession.started_at, postgresql_where=text("status = 'signed'"), sqlite_where=text("status = 'signed'"))
# Flagged sessions, for raising clinician alerts from warnings and severe adverse events.
Index("ix_dosing_session_flagged", DosingSession.patient_id, DosingSession.started_at,
      postgresql_where=text("has_warnings"), sqlite_where=text("has_warnings"))
# A session's addenda in the order they were written.
Index("ix_session_addendum_session", SessionAddendum.session_id, SessionAddendum.created_at, SessionAddendum.id)
