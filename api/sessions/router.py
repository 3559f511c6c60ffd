import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status

from api.routing import CheckedRoute
from api.deps import CallerDep, SessionDep
from api.errors import problem_responses
from api.idempotency import Created, IdempotencyKey, run_idempotent
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from api.prefer import CreatedMinimal, MinimalPreferred
from api.sync import UpdatedSinceQuery
from api.sessions import service
from api.sessions.schemas import (
    AddendumCreate,
    AddendumPublic,
    SessionCreate,
    SessionMinimal,
    SessionPage,
    SessionPublic,
    SessionUpdate,
    SessionView,
)
from models.dosing_sessions import SessionStatus

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["sessions"])

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=1024, description="The session's ETag as last read (strong comparison)"),
]
_ETAG = {"ETag": {"description": 'The session\'s revision as a strong entity tag, "<session_id>-<revision>"',
                  "schema": {"type": "string"}}}


@router.post(
    "/patients/{patient_id}/sessions", response_model=SessionPublic | SessionMinimal,
    status_code=status.HTTP_201_CREATED,
    responses={201: {"headers": _ETAG}, **problem_responses(401, 403, 404, 409, 413, 422)},
)
async def create_session(
    patient_id: uuid.UUID, body: SessionCreate, caller: CallerDep, session: SessionDep, request: Request,
    idempotency_key: IdempotencyKey = None, minimal: MinimalPreferred = None,
) -> SessionPublic | SessionMinimal:
    """A care-team clinician records a supervised dosing session (status draft, revision 1, server warnings);
    `Prefer: return=minimal` answers its id and status only."""

    async def create() -> Created:
        row = await service.create_session(session, caller, patient_id, body)
        return Created(body=service.present(row, caller).model_dump(mode="json"),
                       headers={"ETag": service.etag(row), "Location": f"/v1/sessions/{row.id}"})

    return await run_idempotent(session, caller, idempotency_key, request, body, create,
                                lambda stored: service.authorize_replay(session, caller, stored["id"]),
                                minimal=SessionMinimal if minimal else None)


@router.get("/patients/{patient_id}/sessions", response_model=SessionPage,
            responses=problem_responses(401, 404, 422))
async def list_sessions(
    patient_id: uuid.UUID, caller: CallerDep, session: SessionDep,
    session_status: Annotated[SessionStatus | None, Query(alias="status")] = None,
    updated_since: UpdatedSinceQuery = None, limit: LimitQuery = DEFAULT_LIMIT, cursor: CursorQuery = None,
) -> SessionPage:
    """The patient's sessions, newest started first (patients: their signed sessions); with updated_since, every
    session changed since then (an addendum is a change), oldest change first (not combinable with status)."""
    return await service.list_sessions(session, caller, patient_id, status=session_status,
                                       updated_since=updated_since, limit=limit, cursor=cursor)


@router.get("/sessions/{session_id}", response_model=SessionView,
            responses={200: {"headers": _ETAG}, **problem_responses(401, 404, 422)})
async def read_session(
    session_id: uuid.UUID, caller: CallerDep, session: SessionDep, response: Response
) -> SessionView:
    """One session; patients get their own signed sessions without notes, addenda and warnings."""
    view, tag = await service.read_session(session, caller, session_id)
    response.headers["ETag"] = tag
    return view


@router.patch("/sessions/{session_id}", response_model=SessionPublic,
              responses={200: {"headers": _ETAG}, **problem_responses(401, 403, 404, 409, 412, 413, 422, 428)})
async def update_session(
    session_id: uuid.UUID, body: SessionUpdate, caller: CallerDep, session: SessionDep, response: Response,
    if_match: IfMatch = None,
) -> SessionView:
    """Edit a draft (JSON merge patch per top-level field); needs If-Match; a signed session is 409."""
    view, tag = await service.update_session(session, caller, session_id, if_match, body)
    response.headers["ETag"] = tag
    return view


@router.post("/sessions/{session_id}/sign", response_model=SessionPublic,
             responses={200: {"headers": _ETAG}, **problem_responses(401, 403, 404, 409, 412, 422)})
async def sign_session(
    session_id: uuid.UUID, caller: CallerDep, session: SessionDep, response: Response, if_match: IfMatch = None,
) -> SessionView:
    """Sign the draft: it becomes an immutable record (later edits 409; corrections are addenda)."""
    view, tag = await service.sign_session(session, caller, session_id, if_match)
    response.headers["ETag"] = tag
    return view


@router.post(
    "/sessions/{session_id}/addenda", response_model=AddendumPublic | CreatedMinimal,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 403, 404, 409, 413, 422),
)
async def add_addendum(
    session_id: uuid.UUID, body: AddendumCreate, caller: CallerDep, session: SessionDep, request: Request,
    idempotency_key: IdempotencyKey = None, minimal: MinimalPreferred = None,
) -> AddendumPublic | CreatedMinimal:
    """Append a correction or later observation to a signed session (author and time recorded)."""

    async def create() -> Created:
        addendum = await service.add_addendum(session, caller, session_id, body)
        return Created(body=AddendumPublic.model_validate(addendum, from_attributes=True).model_dump(mode="json"))

    return await run_idempotent(session, caller, idempotency_key, request, body, create,
                                lambda stored: service.authorize_replay(session, caller, stored["session_id"]),
                                minimal=CreatedMinimal if minimal else None)
