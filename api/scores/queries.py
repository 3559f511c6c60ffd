"""Every statement on the score table. Callers have authorised the patient (api.authz) before using these."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, Select, Table, Uuid, bindparam, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.selectable import CTE
from sqlmodel.ext.asyncio.session import AsyncSession

from api.alerts.worsening import cannot_worsen
from api.authz import visible_patients
from api.db import database_unavailable
from api.pagination import SortKey, keyset, page_of
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


def writes_in_one_statement(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def _typed_row(table: Table, prefix: str, source: CTE) -> tuple[list[str], Select]:
    """SELECT of one named, typed parameter per column of `table`, once per row of `source` (none if it is empty)."""
    columns = list(table.c)
    row = select(*[bindparam(f"{prefix}_{c.key}", type_=c.type).label(c.key) for c in columns]).select_from(source)
    return [c.key for c in columns], row


@functools.cache
def _create_statement(role: Role) -> Select:
    """The one-statement create for callers of `role`, built once with named parameters.

    The visibility filter is `api.authz.visible_patients` itself, given a caller whose ids are parameters: the
    same rule every other route uses, not a copy of it.
    """
    caller = Caller(user_id=bindparam("caller_user_id", type_=Uuid), role=role,
                    organization_id=bindparam("caller_organization_id", type_=Uuid),
                    patient_id=bindparam("caller_patient_id", type_=Uuid))  # type: ignore[arg-type]
    # A score that may be worse than its baseline is left to the ordinary path, which raises the alert with it.
    visible = (
        select(Patient.id)
        .where(Patient.id == bindparam("score_patient_id", type_=Uuid), visible_patients(caller), cannot_worsen())
        .cte("visible")
    )
    names, row = _typed_row(_TABLE, "score", visible)
    inserted = (
        postgresql.insert(_TABLE).from_select(names, row)
        .on_conflict_do_nothing(index_elements=[_TABLE.c.id])
        .returning(_TABLE.c.id)
        .cte("inserted")
    )
    side_effects = []
    for table, prefix in ((AuditEvent.__table__, "audit"), (OutboxEvent.__table__, "outbox")):
        names, row = _typed_row(table, prefix, inserted)
        side_effects.append(postgresql.insert(table).from_select(names, row).cte(f"{prefix}_row"))
    return select(exists(select(visible.c.id)), exists(select(inserted.c.id))).add_cte(*side_effects)


def _parameters(prefix: str, table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{prefix}_{column.key}": row[column.key] for column in table.c}


@dataclass(frozen=True)
class _DriverStatement:
    """A statement compiled once for the driver: SQL text, parameter order, and each parameter's conversion."""

    sql: str
    order: tuple[str, ...]
    converters: tuple[Callable[[Any], Any] | None, ...]

    def arguments(self, parameters: Mapping[str, Any]) -> list[Any]:
        return [convert(parameters[name]) if convert else parameters[name]
                for name, convert in zip(self.order, self.converters, strict=True)]


@functools.cache
def _driver_statement(dialect: Dialect, role: Role) -> _DriverStatement:
    compiled = _create_statement(role).compile(dialect=dialect)
    order = tuple(compiled.positiontup or ())
    # The same conversions SQLAlchemy applies when it executes (UTC for instants, JSON text for JSON columns).
    converters = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order)
    return _DriverStatement(compiled.string, order, converters)


async def insert_if_visible(
    engine: AsyncEngine, caller: Caller, score: Mapping[str, Any], audit_row: Mapping[str, Any],
    outbox_row: Mapping[str, Any], worsening_parameters: Mapping[str, Any],
) -> tuple[bool, bool]:
    """PostgreSQL only: the authorisation check, the insert and its audit and outbox rows as ONE autocommitted
    statement (one round trip instead of six), for the hottest request of all. Returns (visible, inserted).

    The statement is SQLAlchemy's (`_create_statement`), compiled once and run on the pooled asyncpg connection
    directly: SQLAlchemy's per-execution work cost twice the driver's for this one statement. No transaction is
    opened, so the single statement commits by itself.

    The audit and outbox rows are written only when the score was; anything else (invisible patient, replay,
    conflict, a score that may be worse than its baseline) is left to the ordinary path, which audits it.
    """
    statement = _driver_statement(engine.dialect, caller.role)
    arguments = statement.arguments({
        "caller_user_id": caller.user_id, "caller_organization_id": caller.organization_id,
        "caller_patient_id": caller.patient_id,
        **_parameters("score", _TABLE, score),
        **_parameters("audit", AuditEvent.__table__, audit_row),
        **_parameters("outbox", OutboxEvent.__table__, outbox_row),
        **worsening_parameters,
    })
    # A checkout replaces a connection the server closed while it was idle (api.db), as for every other route.
    connection = await engine.raw_connection()
    try:
        is_visible, was_inserted = await connection.driver_connection.fetchrow(statement.sql, *arguments)
    except Exception as error:
        if database_unavailable(error):
            # The driver's error bypasses SQLAlchemy's disconnect handling: discard the connection here. The one
            # statement either committed or did not happen, so the client's retry (same id) is safe either way.
            connection.invalidate(error)
        raise
    finally:
        connection.close()  # back to the pool; with no transaction open, its reset needs no round trip
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
