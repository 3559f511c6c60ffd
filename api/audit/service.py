"""Writing the audit log. Events join the caller's transaction, so a change and its audit row commit together
(one round trip); denied attempts are committed on their own because the request that caused them fails."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY, BigInteger, ColumnElement, Insert, Select, String, Uuid, bindparam, cast, func, insert, literal_column,
    select)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from api.context import request_id_var
from api.statements import DriverStatement
from api.security.tokens import Caller
from models.audit import AuditEvent
from models.base import utcnow, uuid7

SUCCESS = "success"
DENIED = "denied"


def event_values(
    caller: Caller | None,
    action: str,
    *,
    outcome: str,
    resource_type: str | None,
    resource_id: object | None,
    patient_id: uuid.UUID | None,
    organization_id: uuid.UUID | None,
    actor_type: str | None = None,
) -> dict[str, Any]:
    """Every column of one event, for callers that write it in their own statement (see api.scores.queries).
    Without a caller the actor is `anonymous` (a failed login), or `system` when said (the worker's sweeps); an API
    client is `api_client`, its id the actor's."""
    return {
        "id": uuid7(),
        "at": utcnow(),
        "organization_id": organization_id or (caller.organization_id if caller else None),
        "actor_id": caller.user_id if caller else None,
        "actor_type": ("api_client" if caller.is_client else "user") if caller else actor_type or "anonymous",
        "action": action,
        "outcome": outcome,
        "resource_type": resource_type,
        "resource_id": str(resource_id) if resource_id is not None else None,
        "patient_id": patient_id,
        "request_id": request_id_var.get(),
    }


def _event(caller: Caller | None, action: str, **fields: Any) -> AuditEvent:
    return AuditEvent(**event_values(caller, action, **fields))


def record(
    session: AsyncSession,
    caller: Caller | None,
    action: str,
    *,
    resource_type: str | None = None,
    resource_id: object | None = None,
    patient_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    outcome: str = SUCCESS,
    actor_type: str | None = None,
) -> None:
    """Adds an event to the current transaction; it is written when the caller commits."""
    session.add(
        _event(caller, action, outcome=outcome, resource_type=resource_type, resource_id=resource_id,
               patient_id=patient_id, organization_id=organization_id, actor_type=actor_type)
    )


def record_patient_reads(
    session: AsyncSession, caller: Caller, action: str, resource_type: str, rows: Iterable[tuple[object, uuid.UUID]]
) -> None:
    """One event per (resource id, patient id) a list answer discloses."""
    session.add_all(
        [
            _event(caller, action, outcome=SUCCESS, resource_type=resource_type, resource_id=resource_id,
                   patient_id=patient_id, organization_id=None)
            for resource_id, patient_id in rows
        ]
    )


# The rows of one statement get UUIDv7s (RFC 9562, as `uuid7` makes them) that rise with their order in it: the
# statement's time in milliseconds, then 0x7000 plus the row's ordinal (version 7, and the 12 bits of rand_a as a
# counter, RFC 9562 section 6.2, method 1), then 64 bits of one gen_random_uuid() per statement (its variant and 62
# random bits). A page's hundred rows land at the right edge of the primary key's B-tree, in order, rather than on a
# hundred random leaves, each written whole to the WAL after a checkpoint (183 -> 65 KB of WAL per 100 rows). Built
# as text from values computed once per statement, a hundred of them cost less than a hundred gen_random_uuid()
# calls, and a third of the per-row bytea construction they replace (bench/README.md, 2026-11-30).
_MILLISECONDS_HEX = select(func.lpad(func.to_hex(cast(func.floor(
    func.date_part(literal_column("'epoch'"), func.clock_timestamp()) * 1000), BigInteger)), 12, "0")
).scalar_subquery()
_RANDOM_TAIL_HEX = select(func.substr(func.replace(cast(func.gen_random_uuid(), String), "-", ""), 17)
                          ).scalar_subquery()
MAX_ORDINAL = 0xFFF  # the counter's 12 bits: more rows than any page holds (api.pagination.MAX_LIMIT)


def _time_ordered_id(ordinal: ColumnElement[int]) -> ColumnElement[uuid.UUID]:
    return cast(func.concat(_MILLISECONDS_HEX, func.to_hex(0x7000 + ordinal), _RANDOM_TAIL_HEX), Uuid)


def patient_reads(ids: Select | None = None) -> Insert:
    """`record_patient_reads` of the patients in the array parameter `patient_ids` (each its own resource), or of
    those the select `ids` answers (`id`, and `n`, each row's ordinal from 1), the other columns as named parameters
    (`patient_read_parameters`): for a read on the driver (api/statements.py) that writes its audit rows in its own
    statement, or in the one that reads (as a WITH). PostgreSQL."""
    table = AuditEvent.__table__
    patients = (ids.subquery("read") if ids is not None else
                func.unnest(bindparam("patient_ids", type_=ARRAY(Uuid))).table_valued("id", with_ordinality="n")
                .render_derived("read"))
    per_row = {"id": _time_ordered_id(patients.c.n), "resource_id": cast(patients.c.id, String),
               "patient_id": patients.c.id}
    values = select(*[per_row.get(column.key, bindparam(column.key, type_=column.type)) for column in table.c])
    return insert(table).from_select([column.key for column in table.c], values.select_from(patients))


def patient_read_parameters(caller: Caller, action: str, resource_type: str) -> dict[str, Any]:
    return event_values(caller, action, outcome=SUCCESS, resource_type=resource_type, resource_id=None,
                        patient_id=None, organization_id=None)


@functools.cache
def _patient_reads(dialect: Dialect) -> DriverStatement:
    return DriverStatement.compile(patient_reads(), dialect)


async def record_patient_reads_now(
    engine: AsyncEngine, caller: Caller, action: str, resource_type: str, patient_ids: Sequence[uuid.UUID]
) -> None:
    """`record_patient_reads` of patients for a read that runs on the driver: one autocommitted statement, durable
    before the answer is sent. PostgreSQL."""
    if len(patient_ids) > MAX_ORDINAL:
        raise ValueError(f"at most {MAX_ORDINAL} patients a statement")
    if patient_ids:
        await _patient_reads(engine.dialect).execute(engine, {
            **patient_read_parameters(caller, action, resource_type), "patient_ids": list(patient_ids)})


async def record_denied(
    session: AsyncSession,
    caller: Caller | None,
    action: str,
    *,
    resource_type: str | None = None,
    resource_id: object | None = None,
    patient_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    owner_organization_id: uuid.UUID | None = None,
) -> None:
    """Commits a denied attempt at once: the request is about to fail and roll back its own work.

    `owner_organization_id` is the organization of `patient_id` when the caller may not see that patient. An
    attempt on another organization's patient is then filed twice: in the caller's own log without the patient
    (which would tell the caller's admin who owns the resource), and in the owner's log with it, so the owner sees
    who probed its records.

    The rollback expires every object loaded in the session: read what you need from them before calling this.
    """
    await session.rollback()
    caller_organization = organization_id or (caller.organization_id if caller else None)
    foreign = owner_organization_id is not None and owner_organization_id != caller_organization
    record(session, caller, action, resource_type=resource_type, resource_id=resource_id,
           patient_id=None if foreign else patient_id, organization_id=organization_id, outcome=DENIED)
    if foreign:
        record(session, caller, action, resource_type=resource_type, resource_id=resource_id, patient_id=patient_id,
               organization_id=owner_organization_id, outcome=DENIED)
    await session.commit()
