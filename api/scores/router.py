import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from api.routing import CheckedRoute, fast_path
from api import conditional
from api.conditional import NOT_MODIFIED_RESPONSE, IfNoneMatch
from api.deps import CallerDep, PatientCaller, SessionDep, query_parameters, sessions_of
from api.errors import problem_responses
from api.scores import service
from api.prefer import CreatedMinimal, MinimalPreferred, applied
from api.scores.schemas import (
    MAX_BATCH,
    MAX_BATCH_BODY_BYTES,
    BatchAnswer,
    BatchMinimalAnswer,
    BatchReturn,
    BatchScored,
    BatchStored,
    ScoreBatch,
    ScoreCreate,
    ScorePage,
    ScorePublic,
    ScoreQuery,
)

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["scores"])
# Routes whose body may exceed MAX_BODY_BYTES, applied by api.middleware before routing.
BODY_LIMITS = {("POST", "/v1/me/scores/batch"): MAX_BATCH_BODY_BYTES}

_REPLAYED = {200: {"model": ScorePublic | CreatedMinimal,
                    "description": "The same id and body again: the stored score"}}
ScoreQueryDep = Annotated[ScoreQuery, Depends(query_parameters(ScoreQuery))]


def _answer(score: ScorePublic, created: bool, minimal: bool, response: Response) -> ScorePublic | CreatedMinimal:
    if not created:
        response.status_code = status.HTTP_200_OK
    if minimal:
        applied(response)
        return CreatedMinimal(id=score.id)
    return score


@router.post("/me/scores", response_model=ScorePublic | CreatedMinimal, status_code=status.HTTP_201_CREATED,
             responses={**_REPLAYED, **problem_responses(401, 403, 404, 409, 413, 422, 503)})
@fast_path  # the busiest request of all (api/routing.py, docs/scores.md)
async def create_my_score(body: ScoreCreate, caller: PatientCaller, request: Request, response: Response,
                          minimal: MinimalPreferred = None) -> ScorePublic | CreatedMinimal:
    """Record a questionnaire the patient answered; the server computes total and severity. `Prefer:
    return=minimal` answers the id only."""
    score, created = await service.create(sessions_of(request), caller, caller.patient_id, body)
    return _answer(score, created, minimal, response)


@router.post("/me/scores/batch", response_model=BatchAnswer | BatchMinimalAnswer,
             responses=problem_responses(401, 403, 404, 413, 422),
             description=f"Offline sync: up to {MAX_BATCH} scores, each created (201), replayed (200), conflicting "
                         "(409) or invalid (422) alone. `?return=minimal` or `Prefer: return=minimal`: each stored "
                         f"entry answers its id and status only. The body may be up to {MAX_BATCH_BODY_BYTES:,} "
                         "bytes (after decompression; other routes: MAX_BODY_BYTES), so that a full batch with the "
                         "longest notes always fits.")
async def create_my_scores(body: ScoreBatch, caller: PatientCaller, session: SessionDep, response: Response,
                           minimal: MinimalPreferred = None, returned: BatchReturn = None) -> BatchAnswer | BatchMinimalAnswer:
    """Offline sync (the description above): each entry succeeds or fails alone."""
    results = await service.create_batch(session, caller, body.scores)
    if returned == "minimal" or (returned is None and minimal):
        applied(response)
        return BatchMinimalAnswer(results=[BatchStored(id=r.id, status=r.status) if isinstance(r, BatchScored) else r
                                           for r in results])
    return BatchAnswer(results=results)


@router.delete("/me/scores/{score_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=problem_responses(401, 403, 404, 422))
async def retract_my_score(score_id: uuid.UUID, caller: PatientCaller, session: SessionDep) -> None:
    """Retract an entry made in error: it stays as a tombstone (deleted_at) that delta sync hands to other devices.
    Only the patient's own reports: a score the care team entered in clinic is 403."""
    await service.retract(session, caller, score_id)


@router.get("/me/scores", response_model=ScorePage,
            responses={**NOT_MODIFIED_RESPONSE, **problem_responses(401, 403, 404, 422)})
async def list_my_scores(caller: PatientCaller, session: SessionDep, query: ScoreQueryDep, response: Response,
                         if_none_match: IfNoneMatch = None) -> ScorePage | Response:
    """The patient's scores, newest recorded first; with updated_since, every change since then, oldest first.
    Answers an ETag; If-None-Match with it → 304 while the page is unchanged."""
    tag, build = await service.tagged_scores(session, caller, caller.patient_id, query)
    return conditional.answer(tag, if_none_match, response, build)


@router.post("/patients/{patient_id}/scores", response_model=ScorePublic | CreatedMinimal,
             status_code=status.HTTP_201_CREATED,
             responses={**_REPLAYED, **problem_responses(401, 403, 404, 409, 413, 422, 503)})
async def create_patient_score(patient_id: uuid.UUID, body: ScoreCreate, caller: CallerDep, request: Request,
                               response: Response, minimal: MinimalPreferred = None) -> ScorePublic | CreatedMinimal:
    """A patient's own score, or one a care-team clinician enters in clinic (`source` tells which)."""
    score, created = await service.create(sessions_of(request), caller, patient_id, body)
    return _answer(score, created, minimal, response)


@router.get("/patients/{patient_id}/scores", response_model=ScorePage,
            responses={**NOT_MODIFIED_RESPONSE, **problem_responses(401, 404, 422)})
async def list_patient_scores(patient_id: uuid.UUID, caller: CallerDep, session: SessionDep,
                              query: ScoreQueryDep, response: Response,
                              if_none_match: IfNoneMatch = None) -> ScorePage | Response:
    """A patient's scores (as /v1/me/scores), with an ETag for If-None-Match."""
    tag, build = await service.tagged_scores(session, caller, patient_id, query)
    return conditional.answer(tag, if_none_match, response, build)


@router.get("/scores/{score_id}", response_model=ScorePublic, responses=problem_responses(401, 404, 422))
async def read_score(score_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> ScorePublic:
    """One score, tombstone included, for anyone who may see its patient."""
    return await service.read(session, caller, score_id)


@router.delete("/scores/{score_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=problem_responses(401, 403, 404, 422))
async def retract_score(score_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> None:
    """Retract a score entered in error, kept as a tombstone: a care-team clinician the in-clinic scores, a patient
    their own reports (a patient's report is never retracted by the clinic, nor an in-clinic score by the patient)."""
    await service.retract(session, caller, score_id)
