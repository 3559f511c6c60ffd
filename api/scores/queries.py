"""Every statement on the score table. Callers have authorised the patient (api.authz) before using these."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import CursorResult, Select, Uuid, bindparam, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from api.alerts.worsening import cannot_worsen
from api.authz import bound_caller, caller_parameters, visible_patients
from api.pagination import SortKey, keyset, page_of
from api.statements import DriverStatement, row_parameters, typed_row
from api.scores.schemas import ScoreQuery
from api.security.tokens import Caller
from models.audit import AuditEvent
from models.outbox import OutboxEvent
from models.patients import Patient
from models.scores import Score
from models.users import Role

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


@functools.cache
def _create_statement(role: Role) -> Select:
    """The one-statement create for callers of `role`, built once with named parameters.

    The visibility filter is `api.authz.visible_patients` itself, given a caller whose ids are parameters: the
    same rule every other route uses, not a copy of it.
    """
    caller = bound_caller(role)
    # A score that may be worse than its baseline is left to the ordinary path, which raises the alert with it.
    visible = (
        select(Patient.id)
        .where(Patient.id == bindparam("score_patient_id", type_=Uuid), visible_patients(caller), cannot_worsen())
        .cte("visible")
    )
    names, row = typed_row(_TABLE, "score", visible)
    inserted = (
        postgresql.insert(_TABLE).from_select(names, row)
        .on_conflict_do_nothing(index_elements=[_TABLE.c.id])
        .returning(_TABLE.c.id)
        .cte("inserted")
    )
    side_effects = []
    for table, prefix in ((AuditEvent.__table__, "audit"), (OutboxEvent.__table__, "outbox")):
        names, row = typed_row(table, prefix, inserted)
        side_effects.append(postgresql.insert(table).from_select(names, row).cte(f"{prefix}_row"))
    return select(exists(select(visible.c.id)), exists(select(inserted.c.id))).add_cte(*side_effects)


@functools.cache
def _driver_statement(dialect: Dialect, role: Role) -> DriverStatement:
    return DriverStatement.compile(_create_statement(role), dialect)


async def insert_if_visible(
    engine: AsyncEngine, caller: Caller, score: Mapping[str, Any], audit_row: Mapping[str, Any],
    outbox_row: Mapping[str, Any], worsening_parameters: Mapping[str, Any],
) -> tuple[bool, bool]:
    """PostgreSQL only: the authorisation check, the insert and its audit and outbox rows as ONE autocommitted
    statement (one round trip instead of six), for the hottest request of all (api/statements.py). Returns
    (visible, inserted).

    The audit and outbox rows are written only when the score was; anything else (invisible patient, replay,
    conflict, a score that may be worse than its baseline) is left to the ordinary path, which audits it.
    """
    is_visible, was_inserted = await _driver_statement(engine.dialect, caller.role).fetchrow(engine, {
        **caller_parameters(caller),
        **row_parameters("score", _TABLE, score),
        **row_parameters("audit", AuditEvent.__table__, audit_row),
        **row_parameters("outbox", OutboxEvent.__table__, outbox_row),
        **worsening_parameters,
    })
    return bool(is_visible), bool(was_inserted)


async def by_ids(session: AsyncSession, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Score]:
    """Scores by id whoever they belong to: only for telling a replay from a conflict, never for answering."""
    if not ids:
        return {}
    rows = (await session.exec(select(Score).where(Score.id.in_(ids)))).scalars().all()
    return {score.id: score for score in rows}


async def get(session: AsyncSession, score_id: uuid.UUID) -> Score | None:
    return await session.get(Score, score_id)


async def tombstone(session: AsyncSession, score_id: uuid.UUID, now: dt.datetime) -> bool:
    """Retracts the score if it is live; False if it was already retracted."""
    result: CursorResult = await session.exec(
        update(Score).where(Score.id == score_id, Score.deleted_at.is_(None)).values(deleted_at=now, updated_at=now)
    )
    return result.rowcount == 1


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


async def page(
    session: AsyncSession, patient_id: uuid.UUID, query: ScoreQuery, *, carry: str | None = None
) -> tuple[list[Score], str | None]:
    """Newest recorded first; in delta sync (updated_since given) oldest change first, tombstones included."""
    keys = NEWEST_RECORDED if query.updated_since is None else OLDEST_CHANGE
    stmt = keyset(_filtered(patient_id, query), keys, limit=query.limit, cursor=query.cursor)
    rows = (await session.exec(stmt)).scalars().all()
    return page_of(rows, keys, limit=query.limit, carry=carry)
