import datetime as dt
import uuid

from pydantic import BaseModel

from api.types import BirthDate, Email, ExternalId, Name, RequestModel, Timezone
from models.patients import CareTeamRole


class PatientCreate(RequestModel):
    full_name: Name
    date_of_birth: BirthDate
    timezone: Timezone
    email: Email | None = None
    external_id: ExternalId | None = None


class PatientUpdate(RequestModel):
    """Every field optional; only those sent change. Required fields cannot be cleared (null → 422)."""

    full_name: Name | None = None
    date_of_birth: BirthDate | None = None
    timezone: Timezone | None = None
    email: Email | None = None
    external_id: ExternalId | None = None


class CareTeamMemberPublic(BaseModel):
    user_id: uuid.UUID
    role: CareTeamRole
    full_name: str
    added_at: dt.datetime


class PatientPublic(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    full_name: str
    date_of_birth: dt.date
    timezone: str
    email: str | None
    external_id: str | None
    has_login: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    care_team: list[CareTeamMemberPublic]


class CareTeamAssignment(RequestModel):
    role: CareTeamRole


class EnrollmentCodePublic(BaseModel):
    code: str
    expires_at: dt.datetime
