import uuid

from fastapi import APIRouter

from api.deps import CallerDep, PatientCaller, SessionDep
from api.errors import problem_responses
from api.schedules import service
from api.schedules.schemas import SchedulePublic

router = APIRouter(prefix="/v1", tags=["schedules"])


@router.get("/patients/{patient_id}/schedule", response_model=SchedulePublic,
            responses=problem_responses(401, 404, 422))
async def patient_schedule(patient_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> SchedulePublic:
    """When each of the active plan's assessments is next due, how overdue it is, and adherence over 28 days
    (local dates in the patient's time zone; docs/schedules.md)."""
    return await service.schedule(session, caller, patient_id)


@router.get("/me/schedule", response_model=SchedulePublic, responses=problem_responses(401, 403, 404))
async def my_schedule(caller: PatientCaller, session: SessionDep) -> SchedulePublic:
    """The patient's own schedule, for setting reminders on the phone (works offline once fetched)."""
    return await service.schedule(session, caller, caller.patient_id)
