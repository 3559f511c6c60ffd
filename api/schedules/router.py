import uuid

from fastapi import APIRouter, Response

from api import conditional
from api.conditional import NOT_MODIFIED_RESPONSE, IfNoneMatch
from api.deps import CallerDep, PatientCaller, SessionDep
from api.errors import problem_responses
from api.schedules import service
from api.schedules.schemas import SchedulePublic
from api.routing import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["schedules"])


@router.get("/patients/{patient_id}/schedule", response_model=SchedulePublic,
            responses={**NOT_MODIFIED_RESPONSE, **problem_responses(401, 404, 422)})
async def patient_schedule(patient_id: uuid.UUID, caller: CallerDep, session: SessionDep, response: Response,
                           if_none_match: IfNoneMatch = None) -> SchedulePublic | Response:
    """When each of the active plan's assessments is next due, how overdue it is, and adherence over 28 days
    (local dates in the patient's time zone; docs/schedules.md). Answers an ETag; If-None-Match with it → 304."""
    tag, build = await service.tagged_schedule(session, caller, patient_id)
    return conditional.answer(tag, if_none_match, response, build)


@router.get("/me/schedule", response_model=SchedulePublic,
            responses={**NOT_MODIFIED_RESPONSE, **problem_responses(401, 403, 404)})
async def my_schedule(caller: PatientCaller, session: SessionDep, response: Response,
                      if_none_match: IfNoneMatch = None) -> SchedulePublic | Response:
    """The patient's own schedule, for setting reminders on the phone (works offline once fetched)."""
    tag, build = await service.tagged_schedule(session, caller, caller.patient_id)
    return conditional.answer(tag, if_none_match, response, build)
