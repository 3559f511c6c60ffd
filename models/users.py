"""Logins (staff and patients), refresh-token families and login throttling."""

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, Column, Index, String, text
from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field


class Role(StrEnum):
    admin = "admin"
    clinician = "clinician"
    patient = "patient"
    # Not an account role: the role of an API client's access tokens (models.api_clients). No login has it.
    api_client = "api_client"


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    # Stored lower-cased; unique across the whole service because login is by email alone.
    email: str = Field(max_length=320, unique=True)
    full_name: str = Field(max_length=200)
    role: Role = Field(sa_type=String(16))
    password_hash: str = Field(max_length=255)
    # Set for patient logins only: the patient record this login belongs to.
    patient_id: uuid.UUID | None = Field(default=None, foreign_key="patient.id", unique=True)
    is_active: bool = True
    created_at: dt.datetime = instant_field(default_now=True)


class RefreshToken(SQLModel, table=True):
    """One row per issued refresh token; the token itself is never stored, only its SHA-256."""

    __tablename__ = "refresh_token"

    id: uuid.UUID = id_field()
    token_hash: str = Field(max_length=64, unique=True)
    family_id: uuid.UUID
    # The token this one was exchanged for (null for a family's first). Refreshes within the reuse grace period answer
    # several children of one token; the first child to be refreshed supersedes its siblings (docs/auth.md).
    parent_id: uuid.UUID | None = Field(default=None, index=True)
    user_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    issued_at: dt.datetime = instant_field(default_now=True)
    expires_at: dt.datetime = instant_field()
    # Set when the token is exchanged for a new one; presenting it again after that is reuse.
    rotated_at: dt.datetime | None = instant_field(default=None)
    revoked_at: dt.datetime | None = instant_field(default=None)
    # Whether the login session (family) proved a second factor: at login (`otp`), or by confirming two-factor
    # within it. Copied to every child; decides the access token's `mfa` claim under `require_staff_mfa`.
    mfa: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=text("false")))


class LoginThrottle(SQLModel, table=True):
    """Failed-login counter per account key (a hash of the email, so unknown emails are throttled the same)."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    locked_until: dt.datetime | None = instant_field(default=None)
    last_failure_at: dt.datetime | None = instant_field(default=None)


Index("ix_refresh_token_live_family", RefreshToken.family_id, postgresql_where=text("revoked_at IS NULL"))


class AccessRevocation(SQLModel, table=True):
    """Access tokens issued before `revoked_at` to a principal (a user or an API client) or within a login session
    (a refresh-token family) stop working at once, although they are stateless JWTs that have not expired.

    Every server process keeps the live rows in memory and rereads them at least every second
    (api/security/revocation.py). A row is needed only while tokens issued before it can still be unexpired, so it
    carries its own `expires_at` (revocation time + the longest access-token lifetime) and is ignored after it.
    """

    __tablename__ = "access_revocation"

    id: uuid.UUID = id_field()
    subject_type: str = Field(max_length=16)  # principal | session
    subject_id: uuid.UUID
    reason: str = Field(max_length=32)
    revoked_at: dt.datetime = instant_field()
    expires_at: dt.datetime = instant_field(index=True)


class UserTotp(SQLModel, table=True):
    """A staff login's TOTP authenticator (RFC 6238): pending until confirmed with a code, then required at login.

    The shared secret is stored encrypted with a key derived from SECRET_KEY (api/security/secretbox.py) and never
    answered again after enrolment. `last_step` is the last accepted time step: a code is accepted once, and never
    one of an earlier step (no replay within its window)."""

    __tablename__ = "user_totp"

    user_id: uuid.UUID = Field(foreign_key="app_user.id", primary_key=True)
    secret_encrypted: str = Field(max_length=255)
    created_at: dt.datetime = instant_field(default_now=True)
    confirmed_at: dt.datetime | None = instant_field(default=None)
    last_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class RecoveryCode(SQLModel, table=True):
    """Single-use codes that stand in for a TOTP code (a lost phone); only their SHA-256 is stored."""

    __tablename__ = "recovery_code"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="app_user.id", index=True)
    code_hash: str = Field(max_length=64)
    created_at: dt.datetime = instant_field(default_now=True)
    used_at: dt.datetime | None = instant_field(default=None)
