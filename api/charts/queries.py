"""The chart's statements. Callers have authorised the patient (api.authz) before using these."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import ColumnElement, Row, ScalarSelect, Select, Uuid, and_, bindparam, case, select
from sqlalchemy.orm import aliased
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
    return (await session.exec(_LIVE_TOTALS, params={"patient_id": patient_id, "instrument": instrument})).all()


# Built once: composing a statement costs more CPU than PostgreSQL spends running it (charts are a hot path).
_LIVE_TOTALS = (
    select(Score.recorded_at, Score.total)
    .where(Score.patient_id == bindparam("patient_id", type_=Uuid), Score.instrument == bindparam("instrument"),
           Score.deleted_at.is_(None))
    .order_by(Score.recorded_at, Score.id)
)


# Whose chart it is: the active plan, else the most recently started of the plans that were once active. A paused
# plan (a blood-pressure hold) or a finished one (follow-up) must not hide the treatment's effect; a draft has not
# begun. Same start date: the later created one.
CHART_PLAN_STATUSES = (PlanStatus.active, PlanStatus.paused, PlanStatus.completed, PlanStatus.discontinued)


def chart_plan_id(patient_id: ColumnElement | uuid.UUID) -> ScalarSelect:
    """The id of the patient's chart plan, as a scalar subquery; it selects from TreatmentPlan, so a statement on
    that table uses an alias for its own rows (or this would correlate to them)."""
    return (
        select(TreatmentPlan.id)
        .where(TreatmentPlan.patient_id == patient_id, TreatmentPlan.status.in_(CHART_PLAN_STATUSES))
        .order_by(case((TreatmentPlan.status == PlanStatus.active, 0), else_=1), TreatmentPlan.start_date.desc(),
                  TreatmentPlan.created_at.desc(), TreatmentPlan.id.desc())
        .limit(1)
        .scalar_subquery()
    )


@functools.cache
def _plan_and_sessions(statuses: tuple[SessionStatus, ...]) -> Select:
    """Built once per set of statuses (see _LIVE_TOTALS)."""
    plan = aliased(TreatmentPlan)
    return (
        select(plan.id.label("chart_plan_id"), plan.start_date, DosingSession.id, DosingSession.started_at,
               DosingSession.dose_mg, DosingSession.route, DosingSession.plan_id)
        .select_from(Patient)
        .outerjoin(plan, plan.id == chart_plan_id(Patient.id))
        .outerjoin(DosingSession, and_(DosingSession.patient_id == Patient.id, DosingSession.status.in_(statuses)))
        .where(Patient.id == bindparam("patient_id", type_=Uuid))
        .order_by(DosingSession.started_at, DosingSession.id)
    )


async def plan_and_sessions(
    session: AsyncSession, patient_id: uuid.UUID, statuses: Collection[SessionStatus]
) -> tuple[tuple[uuid.UUID, dt.date] | None, list[Row]]:
    """The patient's chart plan as (id, start_date), if any, and all their sessions in these statuses as (id,
    started_at, dose_mg, route, plan_id), earliest first: one statement, one row per session and at least one.

    Starts from the patient's row and left-joins the one chart plan (a correlated subquery picks it, so the plan
    never multiplies the sessions) and the sessions, which come off ix_dosing_session_patient_started.
    """
    rows = (await session.exec(_plan_and_sessions(tuple(statuses)), params={"patient_id": patient_id})).all()
    first = rows[0] if rows else None
    chart_plan = None if first is None or first.chart_plan_id is None else (first.chart_plan_id, first.start_date)
    return chart_plan, [row for row in rows if row.id is not None]
