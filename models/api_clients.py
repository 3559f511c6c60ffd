"""API clients: machine callers of an organization (an EHR, a billing or research tool), admitted by scopes.

The secret is never stored, only its SHA-256: it is 256 random bits, so a fast hash is as safe as a slow one (no
dictionary to try) and keeps the token endpoint cheap (docs/integrations.md). Revoking keeps the row (audit and
the scores it entered still name it) and ends its access tokens at once through `access_revocation`.
"""

import datetime as dt
import uuid

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field


class ApiClient(SQLModel, table=True):
    __tablename__ = "api_client"

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(foreign_key="organization.id", index=True)
    # The OAuth client_id (RFC 6749 section 2.2): public, random, prefixed so that it is recognisable in logs.
    client_id: str = Field(max_length=64, unique=True)
    secret_hash: str = Field(max_length=64)  # SHA-256 hex of the secret
    name: str = Field(max_length=200)
    scopes: list[str] = Field(sa_type=JSON)
    created_at: dt.datetime = instant_field(default_now=True)
    created_by: uuid.UUID = Field(foreign_key="app_user.id")
    revoked_at: dt.datetime | None = instant_field(default=None)
    revoked_by: uuid.UUID | None = Field(default=None, foreign_key="app_user.id")
    # When it last obtained a token: lets an admin see which clients are still in use before revoking.
    last_token_at: dt.datetime | None = instant_field(default=None)
