import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, StrictBool, field_validator
from pydantic_core import PydanticCustomError

from api.types import Email, Name, Password, RequestModel
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

    @field_validator("full_name", "role", "is_active")
    @classmethod
    def _not_cleared(cls, value: object) -> object:
        # Runs only for values sent: none of these can be null.
        if value is None:
            raise PydanticCustomError("not_null", "Cannot be null")
        return value


class UserPublic(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: dt.datetime
