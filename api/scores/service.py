"""Scores: server-side scoring, idempotent creates (single and batch), retraction, lists and delta sync.

Every patient is reached through `api.authz.authorize_patient` (which also audits the access); statements live in
`api.scores.queries`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api import outbox
from api.alerts import service as alerts
from api.alerts import worsening
from api.audit import service as audit
from api.authz import (
    ENTER_SCORES,
    OWN_RECORDS_ONLY,
    READ_SCORES,
    RETRACT_SCORES,
    authorize_patient,
    authorize_patient_of,
)
from api.conditional import Tag
from api.db import engine_of
from api.errors import Conflict, Forbidden, ValidationFailed
from api.instruments.registry import INSTRUMENTS
from api.scores import queries
from api.scores.schemas import (
    SCORE_CREATE,
    BatchProblem,
    BatchResult,
    BatchScored,
    ScoreCreate,
    ScorePage,
    ScorePublic,
    ScoreQuery,
)
from api.security.tokens import Caller
from api.statements import one_statement
from api.sync import first_page_watermark
from models.base import utcnow
from models.alerts import AlertPriority
from models.scores import Score
from models.users import Role

# One answer for "your id with other content" and "someone else's id", so a conflict reveals nothing.
ID_TAKEN = "A score with this id already exists with different content; use a new id"
ID_TAKEN_CODE = "score_id_taken"
SCORE_NOT_FOUND = "Score not found"
_COLUMNS = tuple(Score.model_fields)
_PUBLIC_COLUMNS = ("id", "patient_id", "instrument", "items", "total", "severity", "recorded_at", "received_at",
                   "source", "updated_at", "deleted_at")


def _offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def present(score: Mapping[str, Any], viewer: Caller) -> ScorePublic:
    """The public view of a score's column values (`_values(score)` for a stored row)."""
    # A note a clinician (or the clinic's integration) typed on an in-clinic score is theirs: patients never see
    # clinician notes.
    hide_note = viewer.role == Role.patient and score["source"] != "patient"
    return ScorePublic(
        **{name: score[name] for name in _PUBLIC_COLUMNS},
        entered_by=author_of(score),
        urgent_items=list(INSTRUMENTS[score["instrument"]].urgent_answers(score["items"])),
        recorded_utc_offset=_offset(score["recorded_offset_minutes"]),
        note=None if hide_note else score["note"],
    )


def author_of(score: Mapping[str, Any]) -> uuid.UUID:
    """The login, or for an integration score the API client, that entered the score."""
    return score["entered_by"] or score["entered_by_client"]


def _source_of(caller: Caller) -> str:
    if caller.is_client:
        return "integration"
    return "clinician" if caller.role == Role.clinician else "patient"


def _new_score(entry: ScoreCreate, patient_id: uuid.UUID, caller: Caller, now: dt.datetime) -> dict[str, Any]:
    """Every column of a new score: plain values, cheaper than a table object on the hot path."""
    scored = INSTRUMENTS[entry.instrument].score(entry.items)
    offset = entry.recorded_at.utcoffset() or dt.timedelta(0)
    return {
        "id": entry.id,
        "patient_id": patient_id,
        "instrument": entry.instrument,
        "items": list(entry.items),
        "total": scored.total,
        "severity": scored.severity,
        "recorded_at": entry.recorded_at.astimezone(dt.UTC),
        "recorded_offset_minutes": int(offset.total_seconds() // 60),
        "received_at": now,
        "source": _source_of(caller),
        "entered_by": None if caller.is_client else caller.user_id,
        "entered_by_client": caller.user_id if caller.is_client else None,
        "note": entry.note,
        "updated_at": now,
        "deleted_at": None,
    }


def _values(score: Score) -> dict[str, Any]:
    return {column: getattr(score, column) for column in _COLUMNS}


def _is_replay(stored: Mapping[str, Any] | None, entry: ScoreCreate, patient_id: uuid.UUID, caller: Caller) -> bool:
    """The same caller sending the same body for the same patient again: recorded_at compared as an instant,
    whatever offset it came with. Only the score's own author replays it: for anyone else the id is simply taken
    (the same 409 whatever the body), or comparing bodies would confirm guesses of content they may not see, such
    as a clinician's note."""
    return (
        stored is not None
        and author_of(stored) == caller.user_id
        and stored["patient_id"] == patient_id
        and stored["instrument"] == entry.instrument
        and list(stored["items"]) == entry.items
        and stored["recorded_at"] == entry.recorded_at
        and stored["note"] == entry.note
    )


def _created_event(score: Mapping[str, Any]) -> dict[str, object]:
    return {"score_id": score["id"], "patient_id": score["patient_id"]}


def _urgent_answers(score: Mapping[str, Any]) -> tuple[int, ...]:
    return INSTRUMENTS[score["instrument"]].urgent_answers(score["items"])


async def _score_created(
    session: AsyncSession, caller: Caller, organization_id: uuid.UUID, score: Mapping[str, Any]
) -> None:
    """What a new score sets off, in its transaction: the score.created event, and an urgent clinician alert for
    each urgent item answered above its minimum (PHQ-9 item 9: never let it pass silently, whatever the total).
    Worsening from baseline is judged by the caller, once for all the scores it stored (`worsening`)."""
    outbox.enqueue(session, organization_id, "score.created", _created_event(score))
    instrument = INSTRUMENTS[score["instrument"]]
    for index in _urgent_answers(score):
        await alerts.raise_alert(
            session, caller, organization_id=organization_id, patient_id=score["patient_id"],
            kind=f"{instrument.code}_item{index + 1}_positive", priority=AlertPriority.urgent, source_type="score",
            source_id=score["id"],
            message=f"{instrument.name} item {index + 1} answered {score['items'][index]}: "
                    f"{instrument.items[index].text}",
        )


async def _stored(session: AsyncSession, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    return {score_id: _values(score) for score_id, score in (await queries.by_ids(session, ids)).items()}


async def create(
    sessions: async_sessionmaker[AsyncSession], caller: Caller, patient_id: uuid.UUID | None, entry: ScoreCreate
) -> tuple[ScorePublic, bool]:
    """Stores a new score (True) or answers the stored one for a replay (False); a clashing id is 409.

    On PostgreSQL a new score is one statement (authorisation, insert, audit and outbox rows together), without
    even an ORM session; replays, conflicts, refusals and SQLite take the ordinary path, which decides and audits
    each of them.
    """
    engine = engine_of(sessions)
    score = _new_score(entry, patient_id, caller, utcnow()) if patient_id is not None else None
    # Urgent answers raise an alert too: that rare case takes the ordinary path, which writes it in the same
    # transaction. So does a score that may be worse than its baseline (the statement declines to store it).
    if (score is not None and caller.role in ENTER_SCORES.roles and not _urgent_answers(score)
            and one_statement(engine)):
        _, inserted = await queries.insert_if_visible(
            engine, caller, score,
            audit.event_values(caller, "score.create", outcome=audit.SUCCESS, resource_type="score",
                               resource_id=entry.id, patient_id=patient_id, organization_id=None),
            # A visible patient is always of the caller's organization.
            outbox.event_values(caller.organization_id, "score.created", _created_event(score)),
            worsening.worsening_parameters(score),
        )
        if inserted:
            return present(score, caller), True
    async with sessions() as session:
        return await _create(session, caller, patient_id, entry)


async def _create(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID | None, entry: ScoreCreate
) -> tuple[ScorePublic, bool]:
    patient = await authorize_patient(session, caller, patient_id, "score.create", allow=ENTER_SCORES,
                                      resource_type="score", resource_id=entry.id)
    patient_id, organization_id = patient.id, patient.organization_id
    score = _new_score(entry, patient_id, caller, utcnow())
    if await queries.insert_new(session, [score]):
        await _score_created(session, caller, organization_id, score)
        await worsening.raise_if_worsening(session, caller, organization_id, patient_id, [score])
        await session.commit()
        return present(score, caller), True
    stored = (await _stored(session, [entry.id])).get(entry.id)
    if not _is_replay(stored, entry, patient_id, caller):
        await audit.record_denied(session, caller, "score.create", resource_type="score", resource_id=entry.id,
                                  patient_id=patient_id)
        raise Conflict(ID_TAKEN, code=ID_TAKEN_CODE)
    public = present(stored, caller)
    await session.commit()
    return public, False


def _claimed_id(raw: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw["id"]) if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
    except ValueError:
        return None


async def create_batch(session: AsyncSession, caller: Caller, entries: list[Any]) -> list[BatchResult]:
    """Each entry succeeds or fails on its own, with the status it would have got alone (201/200/409/422).

    A bounded number of statements whatever the batch size: one insert for every new entry, one select for the
    ids that were taken, then a single commit with the audit and outbox rows.
    """
    patient = await authorize_patient(session, caller, caller.patient_id, "score.batch", allow=OWN_RECORDS_ONLY,
                                      resource_type="score")
    patient_id, organization_id = patient.id, patient.organization_id
    now = utcnow()
    results: list[BatchResult | None] = [None] * len(entries)
    firsts: dict[uuid.UUID, tuple[int, ScoreCreate, dict[str, Any]]] = {}
    repeats: list[tuple[int, ScoreCreate]] = []  # an id seen earlier in this same batch
    for index, raw in enumerate(entries):
        try:
            entry = SCORE_CREATE.validate_python(raw)
        except ValidationError as exc:
            results[index] = BatchProblem(id=_claimed_id(raw), status=422, problem=ValidationFailed.of(exc.errors(), within=["body", "scores", index]).body())
            continue
        if entry.id in firsts:
            repeats.append((index, entry))
        else:
            firsts[entry.id] = (index, entry, _new_score(entry, patient_id, caller, now))

    inserted = await queries.insert_new(session, [s for _, _, s in firsts.values()]) if firsts else set()
    stored = await _stored(session, firsts.keys() - inserted)
    conflict = Conflict(ID_TAKEN, code=ID_TAKEN_CODE).body()
    for score_id, (index, entry, score) in firsts.items():
        if score_id in inserted:
            await _score_created(session, caller, organization_id, score)
            results[index] = BatchScored(id=score_id, status=201, score=present(score, caller))
        elif _is_replay(stored.get(score_id), entry, patient_id, caller):
            results[index] = BatchScored(id=score_id, status=200, score=present(stored[score_id], caller))
        else:
            results[index] = BatchProblem(id=score_id, status=409, problem=conflict)
        audit.record(session, caller, "score.create", resource_type="score", resource_id=score_id,
                     patient_id=patient_id, outcome=audit.DENIED if results[index].status == 409 else audit.SUCCESS)
    await worsening.raise_if_worsening(session, caller, organization_id, patient_id,
                                       [score for score_id, (_, _, score) in firsts.items() if score_id in inserted])
    for index, entry in repeats:
        first_index, _, first_score = firsts[entry.id]
        first = results[first_index]
        if isinstance(first, BatchScored) and _is_replay(first_score, entry, patient_id, caller):
            results[index] = BatchScored(id=entry.id, status=200, score=first.score)
        else:
            results[index] = BatchProblem(id=entry.id, status=409, problem=conflict)
    await session.commit()
    return results  # type: ignore[return-value]  # every slot is filled above


async def retract(session: AsyncSession, caller: Caller, score_id: uuid.UUID) -> None:
    """Tombstones a score entered in error; repeating it is harmless. Unknown or invisible: 404.

    An entry is retracted by its kind of author: a patient their own self-reports, a care-team clinician the
    in-clinic ones. A patient must not make a clinician's in-clinic PHQ-9 vanish from the charts, nor a clinician
    a patient's own report (403 for both: the score is visible, so 404 would be a lie).
    """
    score = await queries.get(session, score_id)
    patient_id, source = (score.patient_id, score.source) if score else (None, None)
    await authorize_patient_of(session, caller, patient_id, "score.delete", allow=RETRACT_SCORES, resource_type="score",
                               resource_id=score_id, not_found=SCORE_NOT_FOUND)
    if source != _source_of(caller):
        await audit.record_denied(session, caller, "score.delete", resource_type="score", resource_id=score_id,
                                  patient_id=patient_id)
        raise Forbidden("Only the patient retracts their own reports, and only the care team the scores it entered")
    await queries.tombstone(session, score_id, utcnow())
    await session.commit()


async def read(session: AsyncSession, caller: Caller, score_id: uuid.UUID) -> ScorePublic:
    score = await queries.get(session, score_id)
    await authorize_patient_of(session, caller, score.patient_id if score else None, "score.read", allow=READ_SCORES,
                               resource_type="score", resource_id=score_id, not_found=SCORE_NOT_FOUND)
    assert score is not None  # authorize_patient_of answered 404 otherwise
    public = present(_values(score), caller)
    await session.commit()
    return public


async def tagged_scores(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID | None, query: ScoreQuery
) -> tuple[str, Callable[[], ScorePage]]:
    """A page of scores as an entity tag (the page's rows by id and last change, the query, and whether the viewer
    sees clinicians' notes: api/conditional.py) and a function that builds it. The delta-sync watermark is not in
    the tag: a client told 304 keeps its earlier watermark, which is safe."""
    watermark = first_page_watermark(query.cursor)
    await authorize_patient(session, caller, patient_id, "score.list", allow=READ_SCORES, resource_type="score")
    scores, next_cursor = await queries.page(session, patient_id, query, carry=watermark.isoformat())
    await session.commit()
    tag = Tag("scores", patient_id, caller.role == Role.patient, query.instrument, query.recorded_from,
              query.recorded_to, query.updated_since, query.limit, query.cursor, next_cursor)
    tag.add_rows((score.id, score.updated_at) for score in scores)

    def build() -> ScorePage:
        return ScorePage(items=[present(_values(s), caller) for s in scores], next_cursor=next_cursor,
                         sync_watermark=watermark)

    return tag.value, build
