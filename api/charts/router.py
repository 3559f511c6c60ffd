import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from api.charts import service
from api.charts.schemas import ChartPublic, ChartQuery
from api.deps import CallerDep, PatientCaller, SessionDep
from api.errors import problem_responses

router = APIRouter(prefix="/v1", tags=["charts"])

ChartQueryDep = Annotated[ChartQuery, Depends()]


@router.get("/patients/{patient_id}/chart", response_model=ChartPublic,
            responses=problem_responses(401, 404, 422))
async def patient_chart(patient_id: uuid.UUID, caller: CallerDep, session: SessionDep,
                        query: ChartQueryDep) -> ChartPublic:
    """One instrument over time in the patient's calendar: buckets, change from baseline, onset, durability and
    signed sessions (docs/charts.md)."""
    return await service.chart(session, caller, patient_id, query)


@router.get("/me/chart", response_model=ChartPublic, responses=problem_responses(401, 403, 404, 422))
async def my_chart(caller: PatientCaller, session: SessionDep, query: ChartQueryDep) -> ChartPublic:
    """The patient's own chart (the same answer as /v1/patients/{their id}/chart)."""
    return await service.chart(session, caller, caller.patient_id, query)
