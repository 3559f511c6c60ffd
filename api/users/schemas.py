import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel

from api.types import Email, Name, Password, RequestModel
from models.users import Role


class UserCreate(RequestModel):
    email: Email
    full_name: Name
    # Patient logins are created only through enrollment codes, never here.
    role: Literal["clinician", "admin"]
    password: Password


class UserPublic(BaseModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: dt.datetime
