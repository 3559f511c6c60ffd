"""Assessment schedules: from the active plan's `assessments`, when each instrument is next due, how overdue it is
and how well the patient kept to it (rules in api.schedules.rules, statements in api.schedules.queries)."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from api.authz import authorize_patient
from api.schedules import queries, rules
from api.schedules.schemas import ScheduleItem, SchedulePublic
from api.security.tokens import Caller
from models.base import utcnow


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone)


async def schedule(session: AsyncSession, caller: Caller, patient_id: uuid.UUID | None) -> SchedulePublic:
    patient = await authorize_patient(session, caller, patient_id, "schedule.read", resource_type="schedule")
    patient_id, timezone = patient.id, patient.timezone
    zone = ZoneInfo(timezone)
    now = utcnow()
    today = now.astimezone(zone).date()
    [plan] = (await queries.active_plans(session, [patient_id])) or [None]
    if plan is None:
        await session.commit()  # the audit event
        return SchedulePublic(timezone=timezone, plan_id=None, today=today, items=[])
    instruments = {line["instrument"] for line in plan.assessments}
    window_start = today - dt.timedelta(days=rules.ADHERENCE_WINDOW_DAYS - 1)
    last = await queries.last_scores(session, [patient_id], instruments)
    recent = await queries.recent_scores(session, patient_id, instruments, local_midnight(window_start, zone))
    await session.commit()
    items = [
        rules.entry(line["instrument"], line["every_days"], plan.start_date, today, zone,
                    last.get((patient_id, line["instrument"])), recent[line["instrument"]])
        for line in plan.assessments
    ]
    return SchedulePublic(timezone=timezone, plan_id=plan.id, today=today,
                          items=[ScheduleItem.model_validate(item, from_attributes=True) for item in items])
