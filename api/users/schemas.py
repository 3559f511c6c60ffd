import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, StrictBool

from api.types import Email, Name, Password, RequestModel, never_null
from models.users import Role


class UserCreate(RequestModel):
    email: Email
    full_name: Name
    # Patient logins are created only through enrollment codes, never here.
    role: Literal["clinician", "admin"]
    password: Password


class UserUpdate(RequestModel):
    """Any of the fields; a staff member's role and whether their account is active. Patients' logins are not
    staff and are not changed here (404)."""

    full_name: Name | None = None
    role: Literal["clinician", "admin"] | None = None
    is_active: StrictBool | None = None

    # Runs only for values sent: none of these can be null.
    _not_cleared = never_null("full_name", "role", "is_active")


class UserPublic(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: dt.datetime
