"""The dashboard's statements: a fixed number per page, whatever the panel's size. Each takes the set of patients
being summarised (the page, or the whole panel when the order or a filter needs every row) and answers for all of
them at once. Callers have limited the set to patients the caller may see (api.authz.visible_patients)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import ColumnElement, Row, Select, and_, case, false, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel.ext.asyncio.session import AsyncSession

from api.charts.queries import chart_plan_id
from api.patients.service import named_like
from models.alerts import Alert, AlertPriority, AlertStatus
from models.dosing_sessions import DosingSession, SessionStatus
from models.patients import Patient
from models.plans import TreatmentPlan
from models.scores import Score


def panel(visible: ColumnElement[bool], q: str | None) -> Select:
    """(id, full_name, timezone) of the patients the caller may see whose name matches `q`; unordered (the caller
    pages it by name, or orders it in Python)."""
    return named_like(select(Patient.id, Patient.full_name, Patient.timezone).where(visible), q)


async def plans(session: AsyncSession, patient_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Row]:
    """Per patient: the chart plan (the chart's own rule, `chart_plan_id`) with the start of its first signed
    session, and the patient's last signed session."""
    plan = aliased(TreatmentPlan)
    signed = DosingSession.status == SessionStatus.signed
    # By patient first: ix_dosing_session_patient_started finds the few sessions (there is no plan_id index).
    first_session = (select(func.min(DosingSession.started_at))
                     .where(DosingSession.patient_id == Patient.id, DosingSession.plan_id == plan.id, signed)
                     .scalar_subquery())
    last_session = (select(func.max(DosingSession.started_at))
                    .where(DosingSession.patient_id == Patient.id, signed).scalar_subquery())
    stmt = (
        select(Patient.id.label("patient_id"), plan.id.label("plan_id"), plan.status, plan.start_date,
               plan.assessments, first_session.label("first_session_at"), last_session.label("last_session_at"))
        .select_from(Patient)
        .outerjoin(plan, plan.id == chart_plan_id(Patient.id))
        .where(Patient.id.in_(patient_ids))
    )
    return {row.patient_id: row for row in (await session.exec(stmt)).all()}


async def score_spans(session: AsyncSession, patient_ids: Collection[uuid.UUID]
                      ) -> dict[tuple[uuid.UUID, str], tuple[dt.datetime, dt.datetime]]:
    """(first, last) instant of each patient's live scores of each instrument."""
    stmt = (
        select(Score.patient_id, Score.instrument, func.min(Score.recorded_at), func.max(Score.recorded_at))
        .where(Score.patient_id.in_(patient_ids), Score.deleted_at.is_(None))
        .group_by(Score.patient_id, Score.instrument)
    )
    return {(pid, instrument): (first, last) for pid, instrument, first, last in (await session.exec(stmt)).all()}


async def recent_scores(session: AsyncSession, patient_ids: Collection[uuid.UUID], since: dt.datetime
                        ) -> dict[uuid.UUID, list[Row]]:
    """Each patient's live scores recorded after `since`, oldest first: (instrument, recorded_at, total)."""
    found: dict[uuid.UUID, list[Row]] = {pid: [] for pid in patient_ids}
    stmt = (
        select(Score.patient_id, Score.instrument, Score.recorded_at, Score.total)
        .where(Score.patient_id.in_(patient_ids), Score.deleted_at.is_(None), Score.recorded_at > since)
        .order_by(Score.patient_id, Score.recorded_at)
    )
    for row in (await session.exec(stmt)).all():
        found[row.patient_id].append(row)
    return found


async def last_before(session: AsyncSession, wanted: Sequence[tuple[uuid.UUID, str, dt.datetime]]
                      ) -> dict[uuid.UUID, dt.datetime]:
    """Per (patient, instrument, instant): the patient's last live score of that instrument before the instant."""
    condition = or_(*[and_(Score.patient_id == pid, Score.instrument == instrument, Score.recorded_at < before)
                      for pid, instrument, before in wanted]) if wanted else false()
    stmt = (select(Score.patient_id, func.max(Score.recorded_at))
            .where(condition, Score.deleted_at.is_(None)).group_by(Score.patient_id))
    return dict((await session.exec(stmt)).all())


async def scores_at(session: AsyncSession, wanted: Collection[tuple[uuid.UUID, str, dt.datetime]]
                    ) -> dict[tuple[uuid.UUID, str, dt.datetime], Row]:
    """The live score of each (patient, instrument, instant): total and severity."""
    condition = or_(*[and_(Score.patient_id == pid, Score.instrument == instrument, Score.recorded_at == at)
                      for pid, instrument, at in wanted]) if wanted else false()
    stmt = (select(Score.patient_id, Score.instrument, Score.recorded_at, Score.total, Score.severity)
            .where(condition, Score.deleted_at.is_(None)).order_by(Score.id))
    return {(row.patient_id, row.instrument, row.recorded_at): row for row in (await session.exec(stmt)).all()}


async def open_alerts(session: AsyncSession, patient_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """(open, urgent open) alerts per patient."""
    stmt = (
        select(Alert.patient_id, func.count(),
               func.sum(case((Alert.priority == AlertPriority.urgent, 1), else_=0)))
        .where(Alert.patient_id.in_(patient_ids), Alert.status == AlertStatus.open)
        .group_by(Alert.patient_id)
    )
    return {pid: (count, int(urgent or 0)) for pid, count, urgent in (await session.exec(stmt)).all()}
