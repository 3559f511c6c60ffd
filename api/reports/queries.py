"""The report's own statements. Callers have authorised the patient (api.authz) before using these; everything the
chart shows comes from the chart service, not from here."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import case, select
from sqlalchemy.orm import aliased
from sqlmodel.ext.asyncio.session import AsyncSession

from api.charts.queries import chart_plan_id
from models.alerts import Alert, AlertPriority, AlertStatus
from models.dosing_sessions import DosingSession
from models.organizations import Organization
from models.plans import TreatmentPlan


async def organization_name(session: AsyncSession, organization_id: uuid.UUID) -> str:
    return (await session.exec(select(Organization.name).where(Organization.id == organization_id))).scalar_one()


async def chart_plan(session: AsyncSession, patient_id: uuid.UUID) -> TreatmentPlan | None:
    """The plan the report summarises: the charts' own (api.charts.queries.chart_plan_id)."""
    plan = aliased(TreatmentPlan)
    return (await session.exec(select(plan).where(plan.id == chart_plan_id(patient_id)))).scalar_one_or_none()


async def sessions(session: AsyncSession, patient_id: uuid.UUID, ids: Collection[uuid.UUID]) -> list[DosingSession]:
    """The patient's sessions with these ids, earliest first."""
    if not ids:
        return []
    stmt = (
        select(DosingSession)
        .where(DosingSession.patient_id == patient_id, DosingSession.id.in_(ids))
        .order_by(DosingSession.started_at, DosingSession.id)
    )
    return list((await session.exec(stmt)).scalars().all())


async def open_alerts(session: AsyncSession, patient_id: uuid.UUID) -> list[Alert]:
    """Every open alert of the patient, most urgent first, then newest first (ix_alert_patient_status)."""
    stmt = (
        select(Alert)
        .where(Alert.patient_id == patient_id, Alert.status == AlertStatus.open)
        .order_by(case((Alert.priority == AlertPriority.urgent, 0), else_=1), Alert.raised_at.desc(), Alert.id.desc())
    )
    return list((await session.exec(stmt)).scalars().all())
