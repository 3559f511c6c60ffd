"""Every statement on the score table. Callers have authorised the patient (api.authz) before using these."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import CursorResult, Select, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from api.pagination import SortKey, keyset, page_of
from api.scores.schemas import ScoreQuery
from models.scores import Score

NEWEST_RECORDED: list[SortKey] = [(Score.recorded_at, "desc"), (Score.id, "desc")]
OLDEST_CHANGE: list[SortKey] = [(Score.updated_at, "asc"), (Score.id, "asc")]

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_TABLE = Score.__table__


async def insert_new(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> set[uuid.UUID]:
    """Inserts the rows whose id is not taken, in one statement; returns the ids actually inserted.

    ON CONFLICT DO NOTHING makes concurrent creates of one id race-free: exactly one inserts, the others see
    the conflict (PostgreSQL waits for the first to commit or roll back before deciding).
    """
    insert = _INSERTS[session.bind.dialect.name]
    # A Core insert on the table: no ORM bulk machinery, and no autoflush of pending audit rows before it (they go
    # out with the commit's flush instead).
    stmt = insert(_TABLE).values(list(rows)).on_conflict_do_nothing(index_elements=[_TABLE.c.id]).returning(_TABLE.c.id)
    return set((await session.exec(stmt)).scalars().all())


async def by_ids(session: AsyncSession, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Score]:
    """Scores by id whoever they belong to: only for telling a replay from a conflict, never for answering."""
    if not ids:
        return {}
    rows = (await session.exec(select(Score).where(Score.id.in_(ids)))).scalars().all()
    return {score.id: score for score in rows}


async def get(session: AsyncSession, score_id: uuid.UUID) -> Score | None:
    return await session.get(Score, score_id)


async def tombstone(session: AsyncSession, patient_id: uuid.UUID, score_id: uuid.UUID, now: dt.datetime) -> bool:
    """Retracts a live score of this patient; False if there is none (unknown, someone else's, or retracted)."""
    result: CursorResult = await session.exec(
        update(Score)
        .where(Score.id == score_id, Score.patient_id == patient_id, Score.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
    )
    return result.rowcount == 1


async def belongs_to(session: AsyncSession, patient_id: uuid.UUID, score_id: uuid.UUID) -> bool:
    found = await session.exec(select(Score.id).where(Score.id == score_id, Score.patient_id == patient_id))
    return found.scalar_one_or_none() is not None


def _filtered(patient_id: uuid.UUID, query: ScoreQuery) -> Select:
    stmt = select(Score).where(Score.patient_id == patient_id)
    if query.instrument is not None:
        stmt = stmt.where(Score.instrument == query.instrument)
    if query.recorded_from is not None:
        stmt = stmt.where(Score.recorded_at >= query.recorded_from)
    if query.recorded_to is not None:
        stmt = stmt.where(Score.recorded_at < query.recorded_to)
    if query.updated_since is None:
        stmt = stmt.where(Score.deleted_at.is_(None))
    else:
        stmt = stmt.where(Score.updated_at >= query.updated_since)  # tombstones included: other devices drop them
    return stmt


async def page(session: AsyncSession, patient_id: uuid.UUID, query: ScoreQuery) -> tuple[list[Score], str | None]:
    """Newest recorded first; in delta sync (updated_since given) oldest change first, tombstones included."""
    keys = NEWEST_RECORDED if query.updated_since is None else OLDEST_CHANGE
    stmt = keyset(_filtered(patient_id, query), keys, limit=query.limit, cursor=query.cursor)
    rows = (await session.exec(stmt)).scalars().all()
    return page_of(rows, keys, limit=query.limit)
