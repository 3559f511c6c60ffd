import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from api.routing import CheckedRoute
from api.authz import READ_PATIENT, authorize_patient
from api.deps import CallerDep, PatientListCaller, SessionDep, SettingsDep, StaffCaller
from api.errors import problem_responses
from api.idempotency import Created, IdempotencyKey, run_idempotent
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page
from api.prefer import CreatedMinimal, MinimalPreferred
from api.patients import service
from api.patients.schemas import (
    CareTeamAssignment,
    CareTeamMemberPublic,
    EnrollmentCodePublic,
    PatientCreate,
    PatientPublic,
    PatientUpdate,
)

router = APIRouter(route_class=CheckedRoute, prefix="/v1/patients", tags=["patients"])


@router.post(
    "", response_model=PatientPublic | CreatedMinimal, status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 409, 422)
)
async def create_patient(
    body: PatientCreate, caller: StaffCaller, session: SessionDep, request: Request,
    idempotency_key: IdempotencyKey = None, minimal: MinimalPreferred = None,
) -> PatientPublic | CreatedMinimal:
    """Register a patient; a creating clinician joins the care team as prescriber."""

    async def create() -> Created:
        patient = await service.create_patient(session, caller, body)
        return Created(body=(await service.present(session, [patient]))[0].model_dump(mode="json"))

    return await run_idempotent(session, caller, idempotency_key, request, body, create,
                                lambda stored: service.authorize_replay(session, caller, stored),
                                minimal=CreatedMinimal if minimal else None)


@router.get("", response_model=Page[PatientPublic], responses=problem_responses(401, 403, 422))
async def list_patients(
    caller: PatientListCaller,
    session: SessionDep,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="Case-insensitive name search")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[PatientPublic]:
    """A clinician's care-team panel, or an admin's whole organization, by name."""
    patients, next_cursor = await service.list_patients(session, caller, q=q, limit=limit, cursor=cursor)
    items = await service.present(session, patients)
    await session.commit()
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{patient_id}", response_model=PatientPublic, responses=problem_responses(401, 404, 422))
async def read_patient(patient_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> PatientPublic:
    patient = await authorize_patient(session, caller, patient_id, "patient.read", allow=READ_PATIENT)
    public = (await service.present(session, [patient]))[0]
    await session.commit()
    return public


@router.patch("/{patient_id}", response_model=PatientPublic, responses=problem_responses(401, 403, 404, 409, 422))
async def update_patient(
    patient_id: uuid.UUID, body: PatientUpdate, caller: CallerDep, session: SessionDep
) -> PatientPublic:
    patient = await service.update_patient(session, caller, patient_id, body)
    return (await service.present(session, [patient]))[0]


@router.put(
    "/{patient_id}/care-team/{user_id}",
    response_model=CareTeamMemberPublic,
    responses={201: {"model": CareTeamMemberPublic, "description": "Added"}, **problem_responses(401, 403, 404, 422)},
)
async def assign_care_team_member(
    patient_id: uuid.UUID,
    user_id: uuid.UUID,
    body: CareTeamAssignment,
    caller: CallerDep,
    session: SessionDep,
    response: Response,
) -> CareTeamMemberPublic:
    """Put a clinician of the organization on the patient's care team (201), or change their role (200)."""
    member, created = await service.assign_care_team_member(session, caller, patient_id, user_id, body.role)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return member


@router.delete(
    "/{patient_id}/care-team/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
async def remove_care_team_member(
    patient_id: uuid.UUID, user_id: uuid.UUID, caller: CallerDep, session: SessionDep
) -> None:
    await service.remove_care_team_member(session, caller, patient_id, user_id)


@router.post(
    "/{patient_id}/enrollment-codes",
    response_model=EnrollmentCodePublic,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 422),
)
async def issue_enrollment_code(
    patient_id: uuid.UUID, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> EnrollmentCodePublic:
    """A single-use code (valid at most 72 h) the patient types into the app to create their login, or, for a
    patient who already has one (a lost phone, a forgotten password), to reset its email and password and end
    every earlier session. A new code supersedes earlier unused ones."""
    return await service.issue_enrollment_code(session, settings, caller, patient_id)
