import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api import conditional
from api.charts import service
from api.charts.schemas import ChartPublic, ChartQuery
from api.conditional import NOT_MODIFIED_RESPONSE, IfNoneMatch
from api.deps import CallerDep, PatientCaller, query_parameters, sessions_of
from api.errors import problem_responses
from api.routing import CheckedRoute, fast_path

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["charts"])

ChartQueryDep = Annotated[ChartQuery, Depends(query_parameters(ChartQuery))]


@router.get("/patients/{patient_id}/chart", response_model=ChartPublic,
            responses={**NOT_MODIFIED_RESPONSE, **problem_responses(401, 404, 422, 503)})
@fast_path  # what clinicians open and phones poll all day (api/routing.py)
async def patient_chart(patient_id: uuid.UUID, caller: CallerDep, request: Request, query: ChartQueryDep,
                        response: Response, if_none_match: IfNoneMatch = None) -> ChartPublic | Response:
    """One instrument over time in the patient's calendar: buckets, change from baseline, onset, durability and
    signed sessions (docs/charts.md). Answers an ETag; If-None-Match with it → 304 while nothing changed."""
    tag, build = await service.tagged_chart(sessions_of(request), caller, patient_id, query)
    return conditional.answer(tag, if_none_match, response, build)


@router.get("/me/chart", response_model=ChartPublic,
            responses={**NOT_MODIFIED_RESPONSE, **problem_responses(401, 403, 404, 422, 503)})
@fast_path
async def my_chart(caller: PatientCaller, request: Request, query: ChartQueryDep, response: Response,
                   if_none_match: IfNoneMatch = None) -> ChartPublic | Response:
    """The patient's own chart (the same answer as /v1/patients/{their id}/chart), with the same ETag."""
    tag, build = await service.tagged_chart(sessions_of(request), caller, caller.patient_id, query)
    return conditional.answer(tag, if_none_match, response, build)
