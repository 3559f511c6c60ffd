import uuid
from typing import Literal

from fastapi import APIRouter, Query, Request, status

from api.deps import AdminCaller, SessionDep, StaffCaller
from api.errors import problem_responses
from api.idempotency import Created, IdempotencyKey, run_idempotent
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from api.prefer import CreatedMinimal, MinimalPreferred
from api.users import service
from api.users.schemas import UserCreate, UserPublic, UserUpdate
from api.routing import CheckedRoute
from models.users import Role

router = APIRouter(route_class=CheckedRoute, prefix="/v1/users", tags=["users"])


@router.post(
    "", response_model=UserPublic | CreatedMinimal, status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422)
)
async def create_user(
    body: UserCreate, caller: AdminCaller, session: SessionDep, request: Request,
    idempotency_key: IdempotencyKey = None, minimal: MinimalPreferred = None,
) -> UserPublic | CreatedMinimal:
    """Create a clinician or admin in the caller's organization (admins only)."""

    async def create() -> Created:
        user = await service.create_user(session, caller.organization_id, body, caller=caller)
        return Created(body=UserPublic.model_validate(user, from_attributes=True).model_dump(mode="json"))

    # Staff records of the caller's own organization, for admins only (AdminCaller): nothing patient-scoped to
    # re-check on a replay.
    return await run_idempotent(session, caller, idempotency_key, request, body, create, None,
                                minimal=CreatedMinimal if minimal else None)


@router.get("", response_model=Page[UserPublic], responses=problem_responses(401, 403, 422))
async def list_users(
    caller: StaffCaller,
    session: SessionDep,
    role: Literal["clinician", "admin"] | None = Query(default=None),
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[UserPublic]:
    """Staff of the caller's organization, by name (admins and clinicians, e.g. to build care teams)."""
    users, next_cursor = await service.list_staff(
        session, caller, role=Role(role) if role else None, limit=limit, cursor=cursor
    )
    return Page(items=[UserPublic.model_validate(u, from_attributes=True) for u in users], next_cursor=next_cursor)


@router.patch("/{user_id}", response_model=UserPublic, responses=problem_responses(401, 403, 404, 409, 422))
async def update_user(user_id: uuid.UUID, body: UserUpdate, caller: AdminCaller, session: SessionDep) -> UserPublic:
    """Rename a staff member of the caller's organization, change their role, or deactivate or reactivate their
    account (admins). Deactivation and role changes take effect at once on every server process; the last active
    admin can be neither deactivated nor demoted (409 `last_active_admin`). Patients' logins are not staff: 404."""
    user = await service.update_user(session, caller, user_id, body)
    return UserPublic.model_validate(user, from_attributes=True)
