"""The transactional outbox: domain events written in the same transaction as the change they describe.

A rolled-back change leaves no event; the integrations worker claims undispatched rows (FOR UPDATE SKIP LOCKED)
and fans them out to webhook deliveries. Payloads carry ids only, never clinical content.
"""

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Index, text
from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field


class OutboxEvent(SQLModel, table=True):
    __tablename__ = "outbox_event"

    # Becomes the Standard Webhooks `webhook-id`, the same across every retry of every delivery of this event.
    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    type: str = Field(max_length=64)  # score.created | alert.raised | session.signed | plan.updated
    data: dict[str, Any] = Field(sa_type=JSON)
    created_at: dt.datetime = instant_field(default_now=True)
    dispatched_at: dt.datetime | None = instant_field(default=None)


Index("ix_outbox_event_pending", OutboxEvent.created_at, postgresql_where=text("dispatched_at IS NULL"),
      sqlite_where=text("dispatched_at IS NULL"))
