"""The chart's statements. Callers have authorised the patient (api.authz) before using these."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import Row, and_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.dosing_sessions import DosingSession, SessionStatus
from models.patients import Patient
from models.plans import PlanStatus, TreatmentPlan
from models.scores import Score


async def live_totals(session: AsyncSession, patient_id: uuid.UUID, instrument: str) -> Sequence[Row]:
    """(recorded_at, total) of every live score of the patient for the instrument, oldest first.

    Served by the patient-leading indexes (ix_score_patient_recorded, or a bitmap scan when the patient's rows are
    spread over many pages); instrument and tombstones are filtered on the heap rows. The whole history, not the
    chart's window: baseline, latest, onset and durability need it.
    """
    stmt = (
        select(Score.recorded_at, Score.total)
        .where(Score.patient_id == patient_id, Score.instrument == instrument, Score.deleted_at.is_(None))
        .order_by(Score.recorded_at, Score.id)
    )
    return (await session.exec(stmt)).all()


async def plan_and_sessions(
    session: AsyncSession, patient_id: uuid.UUID, statuses: Collection[SessionStatus]
) -> tuple[tuple[uuid.UUID, dt.date] | None, list[Row]]:
    """The patient's active plan as (id, start_date), if any, and their sessions in these statuses as (id,
    started_at, dose_mg, route, plan_id), earliest first: one statement, one row per session and at least one.

    Starts from the patient's row and left-joins both (a partial unique index allows at most one active plan, so
    the plan never multiplies the sessions); the sessions come off ix_dosing_session_patient_started.
    """
    stmt = (
        select(TreatmentPlan.id.label("active_plan_id"), TreatmentPlan.start_date, DosingSession.id,
               DosingSession.started_at, DosingSession.dose_mg, DosingSession.route, DosingSession.plan_id)
        .select_from(Patient)
        .outerjoin(TreatmentPlan, and_(TreatmentPlan.patient_id == Patient.id,
                                       TreatmentPlan.status == PlanStatus.active))
        .outerjoin(DosingSession, and_(DosingSession.patient_id == Patient.id, DosingSession.status.in_(statuses)))
        .where(Patient.id == patient_id)
        .order_by(DosingSession.started_at, DosingSession.id)
    )
    rows = (await session.exec(stmt)).all()
    first = rows[0] if rows else None
    plan = None if first is None or first.active_plan_id is None else (first.active_plan_id, first.start_date)
    return plan, [row for row in rows if row.id is not None]
