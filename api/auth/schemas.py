import uuid
from typing import Literal

from pydantic import BaseModel, Field

from api.types import Email, Password, RequestModel
from models.users import Role


class LoginRequest(RequestModel):
    # Not validated as an email: a malformed address must fail exactly like an unknown one.
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)
    otp: str | None = Field(default=None, min_length=1, max_length=32,
                            description="Staff with two-factor sign-in: the authenticator's current code, or an "
                                        "unused recovery code")


class PasswordChange(RequestModel):
    current_password: str = Field(min_length=1, max_length=256)
    # The rules of every new password (creation, enrollment): api.types.Password.
    new_password: Password


class RefreshRequest(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class EnrollRequest(RequestModel):
    code: str = Field(min_length=1, max_length=32)
    email: Email
    password: Password


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Access-token lifetime in seconds")


class Me(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    organization_id: uuid.UUID
    patient_id: uuid.UUID | None
    timezone: str | None = Field(description="A patient's IANA time zone (their calendar days); null for staff")
