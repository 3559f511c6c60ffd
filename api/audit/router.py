import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from api.audit import service as audit
from api.audit.schemas import AuditEventPublic
from api.deps import AdminCaller, SessionDep
from api.errors import problem_responses
from api.types import BoundedInstant
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, SortKey, keyset, page_of
from api.routing import CheckedRoute
from models.audit import AuditEvent

router = APIRouter(route_class=CheckedRoute, prefix="/v1/audit-events", tags=["audit"])

NEWEST_FIRST: list[SortKey] = [(AuditEvent.at, "desc"), (AuditEvent.id, "desc")]


@router.get("", response_model=Page[AuditEventPublic], responses=problem_responses(401, 403, 422))
async def list_audit_events(
    caller: AdminCaller,
    session: SessionDep,
    patient_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=64, description="e.g. patient.read")] = None,
    outcome: Literal["success", "denied"] | None = None,
    from_: Annotated[BoundedInstant | None, Query(alias="from", description="Inclusive lower bound (RFC 3339)")] = None,
    to: Annotated[BoundedInstant | None, Query(description="Exclusive upper bound (RFC 3339)")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[AuditEventPublic]:
    """The organization's append-only access log, newest first (admins only)."""
    stmt = select(AuditEvent).where(AuditEvent.organization_id == caller.organization_id)
    if patient_id is not None:
        stmt = stmt.where(AuditEvent.patient_id == patient_id)
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == actor_id)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    if outcome is not None:
        stmt = stmt.where(AuditEvent.outcome == outcome)
    if from_ is not None:
        stmt = stmt.where(AuditEvent.at >= from_)
    if to is not None:
        stmt = stmt.where(AuditEvent.at < to)
    rows = (await session.exec(keyset(stmt, NEWEST_FIRST, limit=limit, cursor=cursor))).scalars().all()
    events, next_cursor = page_of(rows, NEWEST_FIRST, limit=limit)
    # Reading the log is itself recorded (after the query, so it does not show in its own answer).
    audit.record(session, caller, "audit.read", resource_type="audit_event", patient_id=patient_id)
    await session.commit()
    return Page(items=[AuditEventPublic.model_validate(e, from_attributes=True) for e in events], next_cursor=next_cursor)
