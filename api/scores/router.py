import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AwareDatetime
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import CallerDep, PatientCaller, SessionDep
from api.errors import problem_responses
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from api.scores import service
from api.scores.schemas import BatchAnswer, InstrumentCode, ScoreBatch, ScoreCreate, ScorePage, ScorePublic
from api.security.tokens import Caller

router = APIRouter(prefix="/v1", tags=["scores"])

_REPLAYED = {200: {"model": ScorePublic, "description": "The same id and body again: the stored score"}}


@dataclass(frozen=True, slots=True)
class ScoreQuery:
    instrument: Annotated[InstrumentCode | None, Query()] = None
    recorded_from: Annotated[
        AwareDatetime | None, Query(alias="from", description="recorded_at at or after (RFC 3339)")
    ] = None
    recorded_to: Annotated[AwareDatetime | None, Query(alias="to", description="recorded_at before (RFC 3339)")] = None
    updated_since: Annotated[
        AwareDatetime | None,
        Query(description="Delta sync: changes (tombstones included) at or after this server time; send the "
                          "previous answer's sync_watermark"),
    ] = None
    limit: LimitQuery = DEFAULT_LIMIT
    cursor: CursorQuery = None


ScoreQueryDep = Annotated[ScoreQuery, Depends()]


async def _list(session: AsyncSession, caller: Caller, patient_id: uuid.UUID | None, query: ScoreQuery) -> ScorePage:
    return await service.list_scores(
        session, caller, patient_id, instrument=query.instrument, recorded_from=query.recorded_from,
        recorded_to=query.recorded_to, updated_since=query.updated_since, limit=query.limit, cursor=query.cursor,
    )


@router.post("/me/scores", response_model=ScorePublic, status_code=status.HTTP_201_CREATED,
             responses={**_REPLAYED, **problem_responses(401, 403, 404, 409, 413, 422)})
async def create_my_score(body: ScoreCreate, caller: PatientCaller, session: SessionDep,
                          response: Response) -> ScorePublic:
    """Record a questionnaire the patient answered; the server computes total and severity."""
    score, created = await service.create(session, caller, caller.patient_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return score


@router.post("/me/scores/batch", response_model=BatchAnswer, responses=problem_responses(401, 403, 404, 413, 422))
async def create_my_scores(body: ScoreBatch, caller: PatientCaller, session: SessionDep) -> BatchAnswer:
    """Offline sync: up to 500 scores, each created (201), replayed (200), conflicting (409) or invalid (422) alone."""
    return BatchAnswer(results=await service.create_batch(session, caller, body.scores))


@router.delete("/me/scores/{score_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=problem_responses(401, 403, 404, 422))
async def retract_my_score(score_id: uuid.UUID, caller: PatientCaller, session: SessionDep) -> None:
    """Retract an entry made in error: it stays as a tombstone (deleted_at) that delta sync hands to other devices."""
    await service.retract(session, caller, score_id)


@router.get("/me/scores", response_model=ScorePage, responses=problem_responses(401, 403, 404, 422))
async def list_my_scores(caller: PatientCaller, session: SessionDep, query: ScoreQueryDep) -> ScorePage:
    """The patient's scores, newest recorded first; with updated_since, every change since then, oldest first."""
    return await _list(session, caller, caller.patient_id, query)


@router.post("/patients/{patient_id}/scores", response_model=ScorePublic, status_code=status.HTTP_201_CREATED,
             responses={**_REPLAYED, **problem_responses(401, 403, 404, 409, 413, 422)})
async def create_patient_score(patient_id: uuid.UUID, body: ScoreCreate, caller: CallerDep, session: SessionDep,
                               response: Response) -> ScorePublic:
    """A patient's own score, or one a care-team clinician enters in clinic (`source` tells which)."""
    score, created = await service.create(session, caller, patient_id, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return score


@router.get("/patients/{patient_id}/scores", response_model=ScorePage, responses=problem_responses(401, 404, 422))
async def list_patient_scores(patient_id: uuid.UUID, caller: CallerDep, session: SessionDep,
                              query: ScoreQueryDep) -> ScorePage:
    return await _list(session, caller, patient_id, query)


@router.get("/scores/{score_id}", response_model=ScorePublic, responses=problem_responses(401, 404, 422))
async def read_score(score_id: uuid.UUID, caller: CallerDep, session: SessionDep) -> ScorePublic:
    """One score, tombstone included, for anyone who may see its patient."""
    return await service.read(session, caller, score_id)
