import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from api.pagination import Page
from api.types import RequestModel, never_null, trimmed_text, with_example
from models.webhooks import DeliveryStatus, WebhookStatus

# The events a subscription may name (api.outbox.EVENT_TYPES); a typo is a 422, never a subscription to nothing.
EventType = Literal["score.created", "alert.raised", "session.signed", "plan.updated"]
TEST_EVENT = "webhook.test"

TargetUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]


def _unique_sorted(events: list[str]) -> list[str]:
    return sorted(set(events))


Events = Annotated[list[EventType], Field(min_length=1, max_length=20), AfterValidator(_unique_sorted)]
Description = trimmed_text(500)


class WebhookCreate(RequestModel):
    """A subscription of the caller's organization: where to POST, and which events."""

    model_config = with_example({"url": "https://ehr.example.com/hooks/calmtrack",
                                 "events": ["score.created", "alert.raised"], "description": "EHR inbox"})

    url: TargetUrl = Field(description="https (http only in development); a public address, checked again at "
                                       "every delivery")
    events: Events = Field(description="score.created | alert.raised | session.signed | plan.updated")
    description: Description | None = None


class WebhookUpdate(RequestModel):
    """Any of the fields; `status` pauses (`disabled`) or resumes (`active`) deliveries, clearing a failing state."""

    url: TargetUrl | None = None
    events: Events | None = None
    description: Description | None = Field(default=None, description="null clears it")
    status: Literal["active", "disabled"] | None = None

    # Runs only for values sent: a subscription always has a target, events and a status.
    _not_cleared = never_null("url", "events", "status")


class WebhookPublic(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    status: WebhookStatus = Field(description="active | disabled (by an admin, or the receiver answered 410) | "
                                              "failing (a delivery exhausted its retries: nothing is sent until "
                                              "it is active again)")
    created_at: dt.datetime
    updated_at: dt.datetime
    failing_since: dt.datetime | None
    last_success_at: dt.datetime | None
    last_failure_at: dt.datetime | None
    last_error: str | None = Field(description="What went wrong on the last failed attempt")


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="whsec_…: verifies deliveries' signatures. Shown only in this answer")


class WebhookPage(Page[WebhookPublic]):
    pass


class AttemptPublic(BaseModel):
    attempt: int = Field(description="1 for the first try of the delivery")
    started_at: dt.datetime
    duration_ms: int
    status_code: int | None = Field(description="The receiver's HTTP status; null when it gave none")
    error: str | None
    succeeded: bool


class DeliveryPublic(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID = Field(description="The webhook-id header: the same on every attempt")
    event_type: str
    status: DeliveryStatus
    created_at: dt.datetime
    attempt_count: int
    next_attempt_at: dt.datetime | None = Field(description="When it is tried next (pending deliveries)")
    completed_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    attempts: list[AttemptPublic] = Field(description="Every attempt, first to last")


class DeliveryPage(Page[DeliveryPublic]):
    pass


class QueuedTestDelivery(BaseModel):
    delivery_id: uuid.UUID
    event_id: uuid.UUID
    event_type: Literal["webhook.test"] = TEST_EVENT
    status: DeliveryStatus
