"""Every statement on the plan tables. Callers have authorised the plan's patient (api.authz) before using these."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from api.pagination import SortKey, keyset, page_of
from models.plans import PlanRevision, PlanStatus, TreatmentPlan

NEWEST_PLAN_FIRST: list[SortKey] = [(TreatmentPlan.created_at, "desc"), (TreatmentPlan.id, "desc")]
OLDEST_CHANGE: list[SortKey] = [(TreatmentPlan.updated_at, "asc"), (TreatmentPlan.id, "asc")]
NEWEST_REVISION_FIRST: list[SortKey] = [(PlanRevision.revision, "desc")]  # unique within one plan


async def get(session: AsyncSession, plan_id: uuid.UUID) -> TreatmentPlan | None:
    return await session.get(TreatmentPlan, plan_id)


async def insert(session: AsyncSession, plan: TreatmentPlan, first: PlanRevision) -> None:
    session.add(plan)
    # Flushed separately: without ORM relationships the unit of work does not order the two inserts by their FK.
    await session.flush()
    session.add(first)


async def advance(
    session: AsyncSession, plan_id: uuid.UUID, expected_revision: int, values: Mapping[str, Any]
) -> TreatmentPlan | None:
    """Applies `values` and the next revision number if the plan is still at `expected_revision`; None if not.

    The revision check is part of the UPDATE itself, so of two writers holding the same revision exactly one
    matches a row: on PostgreSQL the second waits for the first's row lock and then re-reads the row, on SQLite
    writes are serialised. May raise IntegrityError (a second active plan of the patient).
    """
    stmt = (
        update(TreatmentPlan)
        .where(TreatmentPlan.id == plan_id, TreatmentPlan.revision == expected_revision)
        .values(**values, revision=TreatmentPlan.revision + 1)
        .returning(TreatmentPlan)
        .execution_options(populate_existing=True)
    )
    return (await session.exec(stmt)).scalar_one_or_none()


async def page(
    session: AsyncSession, patient_id: uuid.UUID, *, status: PlanStatus | None, updated_since: dt.datetime | None,
    limit: int, cursor: str | None, carry: str | None = None,
) -> tuple[list[TreatmentPlan], str | None]:
    """Newest created first; in delta sync (updated_since given) every plan changed since then, oldest change first."""
    stmt = select(TreatmentPlan).where(TreatmentPlan.patient_id == patient_id)
    if status is not None:
        stmt = stmt.where(TreatmentPlan.status == status)
    keys = NEWEST_PLAN_FIRST
    if updated_since is not None:
        stmt, keys = stmt.where(TreatmentPlan.updated_at >= updated_since), OLDEST_CHANGE
    rows = (await session.exec(keyset(stmt, keys, limit=limit, cursor=cursor))).scalars().all()
    return page_of(rows, keys, limit=limit, carry=carry)


async def revisions(
    session: AsyncSession, plan_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[PlanRevision], str | None]:
    stmt = select(PlanRevision).where(PlanRevision.plan_id == plan_id)
    rows = (await session.exec(keyset(stmt, NEWEST_REVISION_FIRST, limit=limit, cursor=cursor))).scalars().all()
    return page_of(rows, NEWEST_REVISION_FIRST, limit=limit)
