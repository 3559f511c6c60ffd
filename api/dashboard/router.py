from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.dashboard import service
from api.dashboard.schemas import DashboardPage, DashboardQuery
from api.deps import SessionDep, StaffCaller, query_parameters
from api.errors import problem_responses
from api.routing import CheckedRoute
from api.responses import json_answer

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["dashboard"])


@router.get("/dashboard", response_model=DashboardPage, responses=problem_responses(401, 403, 422))
async def read_dashboard(request: Request, caller: StaffCaller, session: SessionDep,
                         query: Annotated[DashboardQuery, Depends(query_parameters(DashboardQuery))]) -> Response:
    """The caller's panel (clinicians: their care teams' patients; admins: the organization), one row per patient
    with baseline, change, trend, schedule and alerts (docs/dashboard.md)."""
    async with request.app.state.dashboard_pages:  # service.CONCURRENT_PAGES at once, first come first served
        page = await service.dashboard(session, caller, query)
    return json_answer(page)  # a DashboardPage, written as its model would be (api/responses.py)
