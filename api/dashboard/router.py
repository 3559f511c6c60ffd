from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.dashboard import service
from api.dashboard.schemas import DashboardPage, DashboardQuery
from api.deps import StaffCaller, query_parameters, sessions_of
from api.errors import problem_responses
from api.routing import CheckedRoute, fast_path
from api.responses import json_answer

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["dashboard"])


@router.get("/dashboard", response_model=DashboardPage, responses=problem_responses(401, 403, 422, 503))
@fast_path  # what clinicians keep open all day (api/routing.py)
async def read_dashboard(request: Request, caller: StaffCaller,
                         query: Annotated[DashboardQuery, Depends(query_parameters(DashboardQuery))]) -> Response:
    """The caller's panel (clinicians: their care teams' patients; admins: the organization), one row per patient
    with baseline, change, trend, schedule and alerts (docs/dashboard.md)."""
    # service.CONCURRENT_PAGES at once, first come first served; a session only while the page is read
    async with request.app.state.dashboard_pages, sessions_of(request)() as session:
        page = await service.dashboard(session, caller, query)
    return json_answer(page)  # a DashboardPage, written as its model would be (api/responses.py)
