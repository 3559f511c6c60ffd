"""Idempotency-Key records for creating POSTs (the IETF Idempotency-Key draft), scoped to the caller."""

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, String
from sqlmodel import Field, SQLModel

from models.base import instant_field


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_key"

    actor_id: uuid.UUID = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=255)
    # SHA-256 of method, route and body: the same key with another request is refused (422).
    request_hash: str = Field(max_length=64)
    state: str = Field(sa_type=String(16))  # in_flight | completed
    response_status: int | None = None
    response_body: Any | None = Field(default=None, sa_type=JSON)
    created_at: dt.datetime = instant_field(default_now=True)
    expires_at: dt.datetime = instant_field(index=True)
