"""Patients, their care teams and the enrollment codes that link a phone login to a patient record."""

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import Column, Index, SmallInteger, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field


class CareTeamRole(StrEnum):
    prescriber = "prescriber"
    monitor = "monitor"
    therapist = "therapist"


class Patient(SQLModel, table=True):
    __tablename__ = "patient"
    __table_args__ = (UniqueConstraint("organization_id", "external_id", name="uq_patient_org_external_id"),)

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    full_name: str = Field(max_length=200)
    date_of_birth: dt.date
    timezone: str = Field(max_length=64)
    email: str | None = Field(default=None, max_length=320)
    external_id: str | None = Field(default=None, max_length=100)
    created_at: dt.datetime = instant_field(default_now=True)
    updated_at: dt.datetime = instant_field(default_now=True)


class CareTeamMember(SQLModel, table=True):
    __tablename__ = "care_team_member"

    patient_id: uuid.UUID = Field(foreign_key="patient.id", primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True)
    role: CareTeamRole = Field(sa_type=String(16))
    added_at: dt.datetime = instant_field(default_now=True)


class EnrollmentCode(SQLModel, table=True):
    """A single-use code a clinician hands the patient; stored only as its SHA-256."""

    __tablename__ = "enrollment_code"

    id: uuid.UUID = id_field()
    patient_id: uuid.UUID = Field(foreign_key="patient.id", index=True)
    code_hash: str = Field(max_length=64, unique=True)
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    created_at: dt.datetime = instant_field(default_now=True)
    expires_at: dt.datetime = instant_field()
    used_at: dt.datetime | None = instant_field(default=None)
    # Enrollments refused because the email was taken: each one tells the code's holder that an account with that
    # email exists, so a code allows only a few (api.auth.service.MAX_EMAIL_CONFLICTS) before it is void.
    email_conflicts: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False, server_default="0"))


# Panel queries go from clinician to patients; keyset lists order patients by name within an organization.
Index("ix_care_team_member_user", CareTeamMember.user_id, CareTeamMember.patient_id)
Index("ix_patient_org_name", Patient.organization_id, Patient.full_name, Patient.id)
