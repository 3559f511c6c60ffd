import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status

from api.deps import CallerDep, SessionDep
from api.errors import problem_responses
from api.idempotency import Created, IdempotencyKey, run_idempotent
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from api.plans import service
from api.plans.schemas import (
    PlanCreate,
    PlanMinimal,
    PlanPage,
    PlanPublic,
    PlanRevisionPage,
    PlanUpdate,
    PlanView,
    StatusChange,
)
from api.prefer import MinimalPreferred
from api.sync import UpdatedSinceQuery
from api.routing import CheckedRoute
from models.plans import PlanStatus

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["plans"])

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=1024, description="The plan's ETag as last read (strong comparison)"),
]
_ETAG = {"ETag": {"description": 'The plan\'s revision as a strong entity tag, "<plan_id>-<revision>"',
                  "schema": {"type": "string"}}}


@router.post(
    "/patients/{patient_id}/plans", response_model=PlanPublic | PlanMinimal, status_code=status.HTTP_201_CREATED,
    responses={201: {"headers": _ETAG}, **problem_responses(401, 403, 404, 409, 413, 422)},
)
async def create_plan(
    patient_id: uuid.UUID, body: PlanCreate, caller: CallerDep, session: SessionDep, request: Request,
    idempotency_key: IdempotencyKey = None, minimal: MinimalPreferred = None,
) -> PlanPublic | PlanMinimal:
    """A care-team clinician drafts a plan (status draft, revision 1); `Prefer: return=minimal` answers its id and
    status only."""

    async def create() -> Created:
        plan = await service.create_plan(session, caller, patient_id, body)
        return Created(body=service.present(plan, caller).model_dump(mode="json"),
                       headers={"ETag": service.etag(plan), "Location": f"/v1/plans/{plan.id}"})

    return await run_idempotent(session, caller, idempotency_key, request, body, create,
                                lambda stored: service.authorize_replay(session, caller, stored),
                                minimal=PlanMinimal if minimal else None)


@router.get("/patients/{patient_id}/plans", response_model=PlanPage, responses=problem_responses(401, 404, 422))
async def list_plans(
    patient_id: uuid.UUID, caller: CallerDep, session: SessionDep,
    plan_status: Annotated[PlanStatus | None, Query(alias="status")] = None,
    updated_since: UpdatedSinceQuery = None, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None,
) -> PlanPage:
    """The patient's plans, newest first; with updated_since, every plan changed since then, oldest change first
    (not combinable with status)."""
    return await service.list_plans(session, caller, patient_id, status=plan_status, updated_since=updated_since,
                                    limit=limit, cursor=cursor)


@router.get("/plans/{plan_id}", response_model=PlanView,
            responses={200: {"headers": _ETAG}, **problem_responses(401, 404, 422)})
async def read_plan(plan_id: uuid.UUID, caller: CallerDep, session: SessionDep, response: Response) -> PlanView:
    """One plan; patients get their own without clinician-only fields."""
    plan, tag = await service.read_plan(session, caller, plan_id)
    response.headers["ETag"] = tag
    return plan


@router.patch("/plans/{plan_id}", response_model=PlanPublic,
              responses={200: {"headers": _ETAG}, **problem_responses(401, 403, 404, 409, 412, 413, 422, 428)})
async def update_plan(
    plan_id: uuid.UUID, body: PlanUpdate, caller: CallerDep, session: SessionDep, response: Response,
    if_match: IfMatch = None,
) -> PlanView:
    """Replace top-level fields (JSON merge patch per field); needs If-Match, answers revision + 1."""
    plan, tag = await service.update_plan(session, caller, plan_id, if_match, body)
    response.headers["ETag"] = tag
    return plan


@router.post("/plans/{plan_id}/status", response_model=PlanPublic,
             responses={200: {"headers": _ETAG}, **problem_responses(401, 403, 404, 409, 412, 413, 422, 428)})
async def change_plan_status(
    plan_id: uuid.UUID, body: StatusChange, caller: CallerDep, session: SessionDep, response: Response,
    if_match: IfMatch = None,
) -> PlanView:
    """draft→active, active→paused, paused→active, active|paused→completed|discontinued; anything else 409."""
    plan, tag = await service.change_status(session, caller, plan_id, if_match, body)
    response.headers["ETag"] = tag
    return plan


@router.get("/plans/{plan_id}/revisions", response_model=PlanRevisionPage,
            responses=problem_responses(401, 403, 404, 422))
async def list_plan_revisions(
    plan_id: uuid.UUID, caller: CallerDep, session: SessionDep, limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> PlanRevisionPage:
    """Who changed what and when, newest first (care team and admins)."""
    return await service.list_revisions(session, caller, plan_id, limit=limit, cursor=cursor)
