import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from api.pagination import Page
from api.security.scopes import Scope
from api.types import Name, RequestModel


class ApiClientCreate(RequestModel):
    name: Name = Field(description="What the client is, e.g. the EHR's name: shown to admins and in the audit log")
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope), description="What its tokens may do")

    @field_validator("scopes")
    @classmethod
    def _distinct(cls, scopes: list[Scope]) -> list[Scope]:
        if len(set(scopes)) != len(scopes):
            raise ValueError("scopes must not repeat")
        return sorted(scopes)


class ApiClientPublic(BaseModel):
    id: uuid.UUID
    client_id: str = Field(description="The OAuth client_id for POST /v1/auth/token")
    name: str
    scopes: list[Scope]
    created_at: dt.datetime
    created_by: uuid.UUID
    revoked_at: dt.datetime | None = Field(description="Set once revoked: its tokens are refused, it gets no more")
    last_token_at: dt.datetime | None = Field(description="When it last obtained an access token")


class ApiClientCreated(ApiClientPublic):
    client_secret: str = Field(description="Shown this once: only a hash is stored. Lost: revoke and create another")


class ApiClientPage(Page[ApiClientPublic]):
    pass


class TokenAnswer(BaseModel):
    """RFC 6749 section 5.1 (client credentials: no refresh token)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds (at most 900)")
    scope: str = Field(description="The granted scopes, space-delimited")


class TokenRequest(BaseModel):
    """The form body of POST /v1/auth/token (application/x-www-form-urlencoded), for the OpenAPI document: the route
    parses it itself (RFC 6749's rules: duplicates refused, unknown parameters ignored)."""

    grant_type: Literal["client_credentials"]
    client_id: str | None = Field(default=None, description="With client_secret, unless sent by HTTP Basic")
    client_secret: str | None = None
    scope: str | None = Field(default=None, description="Space-delimited subset of the client's scopes (default: all)")
