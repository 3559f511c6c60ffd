"""Webhook subscriptions of the caller's organization: register, list, read, change, delete, deliveries, test.

Everything goes through `_owned`, which looks a subscription up within the caller's organization: another
organization's webhook answers 404, like one that does not exist. Creating, changing, deleting and testing are
audited. Sending is the worker's (api/webhooks/delivery.py).
"""

from __future__ import annotations

import base64
import secrets
import uuid

from sqlalchemy import delete, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.errors import Conflict, NotFound, ValidationFailed
from api.pagination import SortKey, keyset, page_of
from api.security.tokens import Caller
from api.settings import Settings
from api.webhooks import targets
from api.webhooks.delivery import TEST_ATTEMPTS, payload_of
from api.webhooks.schemas import (
    TEST_EVENT,
    AttemptPublic,
    DeliveryPage,
    DeliveryPublic,
    QueuedTestDelivery,
    WebhookCreate,
    WebhookCreated,
    WebhookPage,
    WebhookPublic,
    WebhookUpdate,
)
from models.base import utcnow
from models.webhooks import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

WEBHOOK_NOT_FOUND = "Webhook not found"
MAX_WEBHOOKS = 20  # per organization
SECRET_BYTES = 32  # Standard Webhooks: 24 to 64 random bytes

OLDEST_FIRST: list[SortKey] = [(WebhookEndpoint.created_at, "asc"), (WebhookEndpoint.id, "asc")]
NEWEST_FIRST: list[SortKey] = [(WebhookDelivery.created_at, "desc"), (WebhookDelivery.id, "desc")]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def present(endpoint: WebhookEndpoint) -> WebhookPublic:
    return WebhookPublic.model_validate(endpoint, from_attributes=True)


async def _owned(session: AsyncSession, caller: Caller, webhook_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = (await session.exec(
        select(WebhookEndpoint).where(WebhookEndpoint.id == webhook_id,
                                      WebhookEndpoint.organization_id == caller.organization_id)
    )).scalar_one_or_none()
    if endpoint is None:
        raise NotFound(WEBHOOK_NOT_FOUND)
    return endpoint


async def _checked_url(url: str, settings: Settings, resolver: targets.Resolver) -> str:
    try:
        return await targets.check_registration(url, settings, resolver)
    except targets.TargetRefused as refused:
        raise ValidationFailed(f"body.url: {refused}", errors=[{"loc": ["body", "url"], "msg": str(refused),
                                                                "type": refused.code}],
                               code=None if isinstance(refused, targets.InvalidTarget) else refused.code) from None


async def create(
    session: AsyncSession, caller: Caller, body: WebhookCreate, settings: Settings, resolver: targets.Resolver
) -> WebhookCreated:
    url = await _checked_url(body.url, settings, resolver)
    registered = (await session.exec(select(func.count()).select_from(WebhookEndpoint)
                                     .where(WebhookEndpoint.organization_id == caller.organization_id))).scalar_one()
    if registered >= MAX_WEBHOOKS:
        raise Conflict(f"An organization has at most {MAX_WEBHOOKS} webhooks; delete one first",
                       code="webhook_limit_reached")
    now = utcnow()
    endpoint = WebhookEndpoint(organization_id=caller.organization_id, url=url, description=body.description,
                               events=body.events, secret=new_secret(), created_by=caller.user_id, created_at=now,
                               updated_at=now)
    session.add(endpoint)
    audit.record(session, caller, "webhook.create", resource_type="webhook", resource_id=endpoint.id)
    await session.commit()
    return WebhookCreated(**present(endpoint).model_dump(), secret=endpoint.secret)


async def list_webhooks(session: AsyncSession, caller: Caller, *, limit: int, cursor: str | None) -> WebhookPage:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.organization_id == caller.organization_id)
    rows = (await session.exec(keyset(stmt, OLDEST_FIRST, limit=limit, cursor=cursor))).scalars().all()
    endpoints, next_cursor = page_of(rows, OLDEST_FIRST, limit=limit)
    return WebhookPage(items=[present(endpoint) for endpoint in endpoints], next_cursor=next_cursor)


async def read(session: AsyncSession, caller: Caller, webhook_id: uuid.UUID) -> WebhookPublic:
    return present(await _owned(session, caller, webhook_id))


async def update(
    session: AsyncSession, caller: Caller, webhook_id: uuid.UUID, body: WebhookUpdate, settings: Settings,
    resolver: targets.Resolver,
) -> WebhookPublic:
    endpoint = await _owned(session, caller, webhook_id)
    sent = body.model_dump(exclude_unset=True)
    if "url" in sent:
        sent["url"] = await _checked_url(sent["url"], settings, resolver)
    if "status" in sent:
        # Either way a failing state ends: `active` resumes deliveries (held ones go out at once), `disabled` pauses.
        sent["failing_since"] = None
    for name, value in sent.items():
        setattr(endpoint, name, value)
    endpoint.updated_at = utcnow()
    session.add(endpoint)
    audit.record(session, caller, "webhook.update", resource_type="webhook", resource_id=endpoint.id)
    await session.commit()
    return present(endpoint)


async def delete_webhook(session: AsyncSession, caller: Caller, webhook_id: uuid.UUID) -> None:
    """The subscription and its delivery history; nothing more is sent to it (a request in flight may finish)."""
    endpoint = await _owned(session, caller, webhook_id)
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    await session.exec(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    await session.exec(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    await session.exec(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id))
    audit.record(session, caller, "webhook.delete", resource_type="webhook", resource_id=webhook_id)
    await session.commit()


async def list_deliveries(
    session: AsyncSession, caller: Caller, webhook_id: uuid.UUID, *, status: DeliveryStatus | None, limit: int,
    cursor: str | None,
) -> DeliveryPage:
    """The webhook's deliveries, newest first, each with every attempt made."""
    endpoint = await _owned(session, caller, webhook_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    rows = (await session.exec(keyset(stmt, NEWEST_FIRST, limit=limit, cursor=cursor))).scalars().all()
    deliveries, next_cursor = page_of(rows, NEWEST_FIRST, limit=limit)
    attempts: dict[uuid.UUID, list[AttemptPublic]] = {delivery.id: [] for delivery in deliveries}
    if deliveries:
        for attempt in (await session.exec(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(attempts.keys()))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt, WebhookAttempt.started_at)
        )).scalars():
            attempts[attempt.delivery_id].append(AttemptPublic.model_validate(attempt, from_attributes=True))
    return DeliveryPage(items=[
        DeliveryPublic(id=d.id, event_id=d.event_id, event_type=d.event_type, status=d.status,
                       created_at=d.created_at, attempt_count=d.attempts,
                       next_attempt_at=d.next_attempt_at if d.status == DeliveryStatus.pending else None,
                       completed_at=d.completed_at, last_status_code=d.last_status_code, last_error=d.last_error,
                       attempts=attempts[d.id])
        for d in deliveries
    ], next_cursor=next_cursor)


async def send_test(session: AsyncSession, caller: Caller, webhook_id: uuid.UUID) -> QueuedTestDelivery:
    """Queues a `webhook.test` delivery for the worker: tried once, whatever the webhook's status, and a success
    ends a failing state. Its `webhook-id` is its own."""
    endpoint = await _owned(session, caller, webhook_id)
    now, event_id = utcnow(), uuid.uuid4()
    delivery = WebhookDelivery(organization_id=endpoint.organization_id, endpoint_id=endpoint.id, event_id=event_id,
                               event_type=TEST_EVENT,
                               payload=payload_of(TEST_EVENT, now, {"webhook_id": str(endpoint.id)}),
                               status=DeliveryStatus.pending, max_attempts=TEST_ATTEMPTS, next_attempt_at=now,
                               created_at=now)
    session.add(delivery)
    audit.record(session, caller, "webhook.test", resource_type="webhook", resource_id=endpoint.id)
    await session.commit()
    return QueuedTestDelivery(delivery_id=delivery.id, event_id=event_id, status=DeliveryStatus.pending)

