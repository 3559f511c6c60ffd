"""The chart's statements. Callers have authorised the patient (api.authz) before using these."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import Row, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.dosing_sessions import DosingSession, SessionStatus
from models.plans import PlanStatus, TreatmentPlan
from models.scores import Score


async def live_totals(session: AsyncSession, patient_id: uuid.UUID, instrument: str) -> Sequence[Row]:
    """(recorded_at, total) of every live score of the patient for the instrument, oldest first.

    Walks ix_score_patient_recorded (patient_id, recorded_at, id) in order; instrument and tombstones are filtered
    on the way. The whole history, not the chart's window: baseline, latest, onset and durability need it.
    """
    stmt = (
        select(Score.recorded_at, Score.total)
        .where(Score.patient_id == patient_id, Score.instrument == instrument, Score.deleted_at.is_(None))
        .order_by(Score.recorded_at, Score.id)
    )
    return (await session.exec(stmt)).all()


async def active_plan_start(session: AsyncSession, patient_id: uuid.UUID) -> tuple[uuid.UUID, dt.date] | None:
    """(id, start_date) of the patient's one active plan, if any (a partial unique index allows at most one)."""
    stmt = select(TreatmentPlan.id, TreatmentPlan.start_date).where(
        TreatmentPlan.patient_id == patient_id, TreatmentPlan.status == PlanStatus.active)
    row = (await session.exec(stmt)).first()
    return None if row is None else (row.id, row.start_date)


async def sessions_with(
    session: AsyncSession, patient_id: uuid.UUID, statuses: Collection[SessionStatus]
) -> Sequence[Row]:
    """(id, started_at, dose_mg, route, plan_id) of the patient's sessions in these statuses, earliest first
    (ix_dosing_session_patient_started)."""
    stmt = (
        select(DosingSession.id, DosingSession.started_at, DosingSession.dose_mg, DosingSession.route,
               DosingSession.plan_id)
        .where(DosingSession.patient_id == patient_id, DosingSession.status.in_(statuses))
        .order_by(DosingSession.started_at, DosingSession.id)
    )
    return (await session.exec(stmt)).all()
