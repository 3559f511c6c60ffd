"""Statements of the exports. Callers have authorised the patient (api.authz) or the organization-wide export."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import RowMapping, Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from models.dosing_sessions import DosingSession, SessionStatus
from models.patients import Patient
from models.plans import TreatmentPlan
from models.scores import Score

# Rows per keyset page of the bulk export: large enough that a page's round trip is negligible, small enough that
# a page's rows (a few hundred bytes each) are a few hundred kilobytes at most.
EXPORT_BATCH = 2000


async def plans(session: AsyncSession, patient_id: uuid.UUID) -> Sequence[TreatmentPlan]:
    stmt = (select(TreatmentPlan).where(TreatmentPlan.patient_id == patient_id)
            .order_by(TreatmentPlan.start_date, TreatmentPlan.created_at, TreatmentPlan.id))
    return (await session.exec(stmt)).scalars().all()


async def signed_sessions(session: AsyncSession, patient_id: uuid.UUID) -> Sequence[DosingSession]:
    stmt = (select(DosingSession)
            .where(DosingSession.patient_id == patient_id, DosingSession.status == SessionStatus.signed)
            .order_by(DosingSession.started_at, DosingSession.id))
    return (await session.exec(stmt)).scalars().all()


async def live_scores(session: AsyncSession, patient_id: uuid.UUID) -> Sequence[Score]:
    stmt = (select(Score).where(Score.patient_id == patient_id, Score.deleted_at.is_(None))
            .order_by(Score.recorded_at, Score.id))
    return (await session.exec(stmt)).scalars().all()


_EXPORTED = [*Score.__table__.c, Patient.__table__.c.external_id]


def _changed(organization_id: uuid.UUID, since: dt.datetime | None, until: dt.datetime) -> Select:
    stmt = (select(*_EXPORTED).join(Patient, Patient.id == Score.patient_id)
            .where(Patient.organization_id == organization_id, Score.updated_at < until))
    if since is not None:
        stmt = stmt.where(Score.updated_at >= since)
    return stmt


async def changed_scores(
    engine: AsyncEngine, organization_id: uuid.UUID, since: dt.datetime | None, until: dt.datetime,
    *, batch: int | None = None,
) -> AsyncIterator[list[RowMapping]]:
    """Every score of the organization changed in [since, until), tombstones included, oldest change first, in
    keyset pages of `batch` rows over (updated_at, id) (index ix_score_updated): memory stays at one page whatever
    the total, and no transaction stays open between pages, so a long pull holds back neither vacuum nor writers.
    Rows changed before `until` were committed before the export began (until trails the clock by the delta-sync
    margin), so the pages see a stable set."""
    batch = batch or EXPORT_BATCH
    after: tuple[dt.datetime, uuid.UUID] | None = None
    while True:
        stmt = _changed(organization_id, since, until)
        if after is not None:
            # A row-value comparison, not the equivalent OR: PostgreSQL then walks the index from the position
            # (an index range scan that stops at the LIMIT) instead of collecting and sorting every later row for
            # each page, which made the whole export quadratic.
            stmt = stmt.where(tuple_(Score.updated_at, Score.id) > tuple_(*after))
        stmt = stmt.order_by(Score.updated_at, Score.id).limit(batch)
        async with engine.connect() as connection:
            rows: list[Any] = (await connection.execute(stmt)).mappings().all()
        if not rows:
            return
        yield rows
        if len(rows) < batch:
            return
        after = (rows[-1]["updated_at"], rows[-1]["id"])
