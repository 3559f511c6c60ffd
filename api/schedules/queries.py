"""The schedule's statements. Callers have authorised the patient (api.authz) before using these."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import Row, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.patients import Patient
from models.plans import PlanStatus, TreatmentPlan
from models.scores import Score


async def active_plans(session: AsyncSession, patient_ids: Collection[uuid.UUID] | None = None,
                       *, after: uuid.UUID | None = None, limit: int | None = None) -> Sequence[Row]:
    """(plan id, patient id, organization id, timezone, start_date, assessments) of active plans: of the given
    patients, or, for the sweep, every active plan in plan-id order after `after`."""
    stmt = (
        select(TreatmentPlan.id, TreatmentPlan.patient_id, Patient.organization_id, Patient.timezone,
               TreatmentPlan.start_date, TreatmentPlan.assessments)
        .join(Patient, Patient.id == TreatmentPlan.patient_id)
        .where(TreatmentPlan.status == PlanStatus.active)
    )
    if patient_ids is not None:
        stmt = stmt.where(TreatmentPlan.patient_id.in_(patient_ids))
    if after is not None:
        stmt = stmt.where(TreatmentPlan.id > after)
    if limit is not None:
        stmt = stmt.order_by(TreatmentPlan.id).limit(limit)
    return (await session.exec(stmt)).all()


async def last_scores(session: AsyncSession, patient_ids: Collection[uuid.UUID],
                      instruments: Collection[str]) -> dict[tuple[uuid.UUID, str], dt.datetime]:
    """The instant of each patient's last live score of each instrument."""
    if not patient_ids or not instruments:
        return {}
    stmt = (
        select(Score.patient_id, Score.instrument, func.max(Score.recorded_at))
        .where(Score.patient_id.in_(patient_ids), Score.instrument.in_(instruments), Score.deleted_at.is_(None))
        .group_by(Score.patient_id, Score.instrument)
    )
    return {(patient_id, instrument): last for patient_id, instrument, last in (await session.exec(stmt)).all()}


async def recent_scores(session: AsyncSession, patient_id: uuid.UUID, instruments: Collection[str],
                        since: dt.datetime) -> dict[str, list[dt.datetime]]:
    """The instants of the patient's live scores of these instruments recorded at or after `since`."""
    found: dict[str, list[dt.datetime]] = {instrument: [] for instrument in instruments}
    if instruments:
        stmt = (
            select(Score.instrument, Score.recorded_at)
            .where(Score.patient_id == patient_id, Score.instrument.in_(instruments), Score.deleted_at.is_(None),
                   Score.recorded_at >= since)
        )
        for instrument, recorded_at in (await session.exec(stmt)).all():
            found[instrument].append(recorded_at)
    return found
