"""Clinician alerts: raised in the same transaction as the change that calls for them, listed for the care team,
acknowledged with a note. docs/alerts.md lists what raises each kind.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from api import outbox
from api.alerts.schemas import AlertPage, AlertPublic
from api.audit import service as audit
from api.authz import ACKNOWLEDGE_ALERTS, READ_ALERTS, authorize_patient, authorize_patient_of, visible_patients
from api.errors import Conflict
from api.pagination import SortKey, keyset, page_of
from api.security.tokens import Caller
from models.alerts import Alert, AlertPriority, AlertStatus
from models.base import utcnow
from models.patients import Patient

NEWEST_FIRST: list[SortKey] = [(Alert.raised_at, "desc"), (Alert.id, "desc")]
ALERT_NOT_FOUND = "Alert not found"


async def raise_alert(
    session: AsyncSession, caller: Caller | None, *, organization_id: uuid.UUID, patient_id: uuid.UUID, kind: str,
    priority: AlertPriority, source_type: str, source_id: uuid.UUID, message: str, plan_id: uuid.UUID | None = None,
) -> bool:
    """Adds the alert to the caller's transaction, unless this source already raised one of this kind (the unique
    (source_type, source_id, kind) index decides, so retries and concurrent workers never raise it twice) or, for
    an alert naming a plan, one of this kind is open for the plan (the partial unique index on (plan_id, kind)).
    Without a caller the worker raised it: audited as the system. True if it was raised."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    alert_id = uuid.uuid4()
    raised = await session.exec(
        insert(Alert)
        .values(id=alert_id, organization_id=organization_id, patient_id=patient_id, kind=kind, priority=priority,
                status=AlertStatus.open, source_type=source_type, source_id=source_id, message=message,
                raised_at=utcnow(), plan_id=plan_id)
        # No conflict target: either unique index may hold the alert that was already raised.
        .on_conflict_do_nothing()
        .returning(Alert.id)
    )
    if raised.scalar_one_or_none() is None:
        return False
    audit.record(session, caller, "alert.raise", resource_type="alert", resource_id=alert_id, patient_id=patient_id,
                 organization_id=organization_id, actor_type="system")
    outbox.enqueue(session, organization_id, "alert.raised", {"alert_id": alert_id, "patient_id": patient_id})
    return True


async def list_alerts(
    session: AsyncSession, caller: Caller, *, status: AlertStatus | None, patient_id: uuid.UUID | None,
    priority: AlertPriority | None, limit: int, cursor: str | None,
) -> AlertPage:
    """Alerts of the patients the caller may see, newest first; naming a patient it may not see is a 404."""
    stmt = select(Alert).join(Patient, Patient.id == Alert.patient_id).where(visible_patients(caller))
    if patient_id is not None:
        await authorize_patient(session, caller, patient_id, "alert.list", allow=READ_ALERTS, resource_type="alert")
        stmt = stmt.where(Alert.patient_id == patient_id)
    if status is not None:
        stmt = stmt.where(Alert.status == status)
    if priority is not None:
        stmt = stmt.where(Alert.priority == priority)
    rows = (await session.exec(keyset(stmt, NEWEST_FIRST, limit=limit, cursor=cursor))).scalars().all()
    alerts, next_cursor = page_of(rows, NEWEST_FIRST, limit=limit)
    if patient_id is None:
        audit.record_patient_reads(session, caller, "alert.list", "alert", [(a.id, a.patient_id) for a in alerts])
    items = [AlertPublic.model_validate(alert, from_attributes=True) for alert in alerts]
    await session.commit()
    return AlertPage(items=items, next_cursor=next_cursor)


async def acknowledge(session: AsyncSession, caller: Caller, alert_id: uuid.UUID, note: str) -> AlertPublic:
    alert = await session.get(Alert, alert_id)
    await authorize_patient_of(session, caller, alert.patient_id if alert else None, "alert.acknowledge",
                               allow=ACKNOWLEDGE_ALERTS, resource_type="alert", resource_id=alert_id,
                               not_found=ALERT_NOT_FOUND)
    now = utcnow()
    # Compare-and-set: of two clinicians acknowledging at once, one wins and the other is told.
    acknowledged = await session.exec(
        update(Alert)
        .where(Alert.id == alert_id, Alert.status == AlertStatus.open)
        .values(status=AlertStatus.acknowledged, acknowledged_at=now, acknowledged_by=caller.user_id,
                acknowledgement_note=note)
        .returning(Alert)
    )
    row = acknowledged.scalar_one_or_none()
    if row is None:
        await session.rollback()
        raise Conflict("This alert was already acknowledged")
    public = AlertPublic.model_validate(row, from_attributes=True)
    await session.commit()
    return public
