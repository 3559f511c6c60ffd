"""Webhooks: an organization's subscriptions, one delivery per (event, subscription), one attempt row per HTTP try.

The outbox (models/outbox.py) holds the events; `calmtrack worker` fans each out to the deliveries of the
subscriptions of its organization that want its type, then claims due deliveries with a lease and POSTs them
(api/webhooks/delivery.py). A delivery's `event_id` is the Standard Webhooks `webhook-id`: the outbox event's id,
the same across every retry.
"""

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.base import id_field, instant_field


class WebhookStatus(StrEnum):
    active = "active"  # receives events
    disabled = "disabled"  # by an admin, or by the receiver answering 410 Gone
    failing = "failing"  # a delivery exhausted its retries: nothing more is sent until it is active again


class DeliveryStatus(StrEnum):
    pending = "pending"  # due at next_attempt_at (held while its subscription is not active)
    succeeded = "succeeded"
    failed = "failed"  # retries exhausted, or the receiver answered 410 Gone


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoint"

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    url: str = Field(max_length=2048)
    description: str | None = Field(default=None, max_length=500)
    events: list[str] = Field(sa_type=JSON)  # a subset of api.outbox.EVENT_TYPES
    # The signing secret, `whsec_` + base64 of 32 random bytes. Stored as it is: the worker must recover it to sign
    # (see docs/webhooks.md, "Secrets"); never answered after creation.
    secret: str = Field(max_length=100)
    status: WebhookStatus = Field(sa_type=String(16), default=WebhookStatus.active)
    created_by: uuid.UUID | None = Field(default=None)  # the user (or API client) who registered it
    created_at: dt.datetime = instant_field(default_now=True)
    updated_at: dt.datetime = instant_field(default_now=True)
    failing_since: dt.datetime | None = instant_field(default=None)
    last_success_at: dt.datetime | None = instant_field(default=None)
    last_failure_at: dt.datetime | None = instant_field(default=None)
    last_error: str | None = Field(default=None, max_length=500)


Index("ix_webhook_endpoint_org_created", WebhookEndpoint.organization_id, WebhookEndpoint.created_at,
      WebhookEndpoint.id)


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    # The fan-out inserts with ON CONFLICT DO NOTHING on this: workers fanning out the same event at once make one.
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_delivery_endpoint_event"),)

    id: uuid.UUID = id_field()
    organization_id: uuid.UUID = Field(foreign_key="organization.id")
    endpoint_id: uuid.UUID = Field(foreign_key="webhook_endpoint.id")
    event_id: uuid.UUID  # webhook-id: the outbox event's id (a test delivery's own)
    event_type: str = Field(max_length=64)
    payload: str = Field(sa_type=Text)  # the exact body sent on every attempt: {type, timestamp, data}
    status: DeliveryStatus = Field(sa_type=String(16), default=DeliveryStatus.pending)
    attempts: int = 0  # claims so far, counted when claimed (a worker killed mid-attempt used one)
    max_attempts: int
    next_attempt_at: dt.datetime = instant_field()
    # A claim: the worker holding `lease_token` sends it until `lease_until`; after that anyone may claim it again.
    lease_until: dt.datetime | None = instant_field(default=None)
    lease_token: uuid.UUID | None = Field(default=None)
    created_at: dt.datetime = instant_field(default_now=True)
    completed_at: dt.datetime | None = instant_field(default=None)
    last_status_code: int | None = Field(default=None)
    last_error: str | None = Field(default=None, max_length=500)


# What the worker claims: pending deliveries by due time.
Index("ix_webhook_delivery_due", WebhookDelivery.next_attempt_at, postgresql_where=text("status = 'pending'"),
      sqlite_where=text("status = 'pending'"))
Index("ix_webhook_delivery_endpoint_created", WebhookDelivery.endpoint_id, WebhookDelivery.created_at,
      WebhookDelivery.id)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempt"

    id: uuid.UUID = id_field()
    delivery_id: uuid.UUID = Field(foreign_key="webhook_delivery.id", index=True)
    attempt: int  # 1 for the first try of the delivery
    started_at: dt.datetime = instant_field()
    duration_ms: int
    status_code: int | None = Field(default=None)  # None: no HTTP answer (refused target, timeout, connection error)
    error: str | None = Field(default=None, max_length=500)
    succeeded: bool
