import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from api.routing import CheckedRoute
from api.deps import SessionDep, SettingsDep
from api.errors import problem_responses
from api.idempotency import Created, IdempotencyKey, run_idempotent
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from api.webhooks import service, targets
from api.webhooks.auth import WebhookManager
from api.webhooks.schemas import (
    DeliveryPage,
    QueuedTestDelivery,
    WebhookCreate,
    WebhookCreated,
    WebhookPage,
    WebhookPublic,
    WebhookUpdate,
)
from models.webhooks import DeliveryStatus

router = APIRouter(route_class=CheckedRoute, prefix="/v1/webhooks", tags=["webhooks"])


async def get_resolver(request: Request) -> targets.Resolver:
    """How target host names are resolved for the SSRF check: the system's resolver (tests set their own)."""
    return getattr(request.app.state, "webhook_resolver", targets.system_resolver)


ResolverDep = Annotated[targets.Resolver, Depends(get_resolver)]


@router.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED,
             responses=problem_responses(401, 403, 409, 422))
async def create_webhook(
    body: WebhookCreate, caller: WebhookManager, session: SessionDep, settings: SettingsDep, resolver: ResolverDep,
    request: Request, idempotency_key: IdempotencyKey = None,
) -> WebhookCreated:
    """Subscribe a URL of the receiver to events of the caller's organization. The answer holds the signing secret,
    shown this once. The URL must be https and resolve to public addresses (422 `webhook_url_insecure`,
    `webhook_target_forbidden`); 409 `webhook_limit_reached` past 20 webhooks."""

    async def create() -> Created:
        created = await service.create(session, caller, body, settings, resolver)
        return Created(body=created.model_dump(mode="json"), headers={"Location": f"/v1/webhooks/{created.id}"})

    # An organization's configuration for its admins only (the route's caller check): nothing patient-scoped to
    # re-check on a replay.
    return await run_idempotent(session, caller, idempotency_key, request, body, create, None)


@router.get("", response_model=WebhookPage, responses=problem_responses(401, 403, 422))
async def list_webhooks(
    caller: WebhookManager, session: SessionDep, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None
) -> WebhookPage:
    """The organization's webhooks, oldest first (without their secrets)."""
    return await service.list_webhooks(session, caller, limit=limit, cursor=cursor)


@router.get("/{webhook_id}", response_model=WebhookPublic, responses=problem_responses(401, 403, 404, 422))
async def read_webhook(webhook_id: uuid.UUID, caller: WebhookManager, session: SessionDep) -> WebhookPublic:
    """A webhook with its status and, after a failed attempt, the last error."""
    return await service.read(session, caller, webhook_id)


@router.patch("/{webhook_id}", response_model=WebhookPublic, responses=problem_responses(401, 403, 404, 422))
async def update_webhook(
    webhook_id: uuid.UUID, body: WebhookUpdate, caller: WebhookManager, session: SessionDep, settings: SettingsDep,
    resolver: ResolverDep,
) -> WebhookPublic:
    """Change the URL (checked like a new one), the events, the description, or the status: `disabled` pauses
    deliveries, `active` resumes them and ends a failing state."""
    return await service.update(session, caller, webhook_id, body, settings, resolver)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               responses=problem_responses(401, 403, 404, 422))
async def delete_webhook(webhook_id: uuid.UUID, caller: WebhookManager, session: SessionDep) -> Response:
    """Unsubscribe: nothing more is sent, and the delivery history goes too."""
    await service.delete_webhook(session, caller, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage, responses=problem_responses(401, 403, 404, 422))
async def list_deliveries(
    webhook_id: uuid.UUID, caller: WebhookManager, session: SessionDep, status: DeliveryStatus | None = None,
    limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None,
) -> DeliveryPage:
    """The webhook's deliveries, newest first: event id and type, status, and every attempt with its status code,
    error and timing."""
    return await service.list_deliveries(session, caller, webhook_id, status=status, limit=limit, cursor=cursor)


@router.post("/{webhook_id}/test", response_model=QueuedTestDelivery, status_code=status.HTTP_202_ACCEPTED,
             responses=problem_responses(401, 403, 404, 422))
async def test_webhook(webhook_id: uuid.UUID, caller: WebhookManager, session: SessionDep) -> QueuedTestDelivery:
    """Queue a signed `webhook.test` delivery; the worker sends it within seconds, once, whatever the webhook's
    status. Its outcome shows in the deliveries; a success ends a failing state."""
    return await service.send_test(session, caller, webhook_id)
