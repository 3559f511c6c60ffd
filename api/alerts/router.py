import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.alerts import service
from api.alerts.schemas import Acknowledgement, AlertPage, AlertPublic
from api.deps import AlertReader, SessionDep, StaffCaller
from api.errors import problem_responses
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from api.routing import CheckedRoute
from models.alerts import AlertPriority, AlertStatus

router = APIRouter(route_class=CheckedRoute, prefix="/v1/alerts", tags=["alerts"])


@router.get("", response_model=AlertPage, responses=problem_responses(401, 403, 404, 422))
async def list_alerts(
    caller: AlertReader,
    session: SessionDep,
    status: AlertStatus | None = None,
    patient_id: uuid.UUID | None = None,
    priority: Annotated[AlertPriority | None, Query(description="urgent: same-day attention")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> AlertPage:
    """Alerts of the caller's panel (clinicians) or organization (admins), newest first."""
    return await service.list_alerts(session, caller, status=status, patient_id=patient_id, priority=priority,
                                     limit=limit, cursor=cursor)


@router.post("/{alert_id}/acknowledge", response_model=AlertPublic,
             responses=problem_responses(401, 403, 404, 409, 422))
async def acknowledge_alert(
    alert_id: uuid.UUID, body: Acknowledgement, caller: StaffCaller, session: SessionDep
) -> AlertPublic:
    """A care-team clinician closes the alert with a note of what was done; a second acknowledgement is 409."""
    return await service.acknowledge(session, caller, alert_id, body.note)
