"""Assessment schedules: from the active plan's `assessments`, when each instrument is next due, how overdue it is
and how well the patient kept to it (rules in api.schedules.rules, statements in api.schedules.queries)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.alerts import service as alerts
from api.authz import READ_SCORES, authorize_patient
from api.conditional import Tag
from api.instruments.registry import INSTRUMENTS
from api.schedules import queries, rules
from api.schedules.schemas import ScheduleItem, SchedulePublic
from api.security.tokens import Caller
from models.alerts import AlertPriority
from models.base import utcnow


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone)


async def tagged_schedule(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID | None
) -> tuple[str, Callable[[], SchedulePublic]]:
    """The schedule's entity tag, a digest of everything it is computed from (today's local date included), and a
    function that computes it (api/conditional.py)."""
    patient = await authorize_patient(session, caller, patient_id, "schedule.read", allow=READ_SCORES,
                                      resource_type="schedule")
    patient_id, timezone = patient.id, patient.timezone
    zone = ZoneInfo(timezone)
    now = utcnow()
    today = now.astimezone(zone).date()
    [plan] = (await queries.active_plans(session, [patient_id])) or [None]
    tag = Tag("schedule", patient_id, timezone, today)
    if plan is None:
        await session.commit()  # the audit event
        return tag.value, lambda: SchedulePublic(timezone=timezone, plan_id=None, today=today, items=[])
    instruments = {line["instrument"] for line in plan.assessments}
    window_start = today - dt.timedelta(days=rules.ADHERENCE_WINDOW_DAYS - 1)
    last = await queries.last_scores(session, [patient_id], instruments)
    recent = await queries.recent_scores(session, patient_id, instruments, local_midnight(window_start, zone))
    await session.commit()
    tag.add(plan.id, plan.start_date, plan.assessments).add_rows(sorted(last.items()))
    tag.add_rows((instrument, sorted(instants)) for instrument, instants in sorted(recent.items()))

    def build() -> SchedulePublic:
        items = [
            rules.entry(line["instrument"], line["every_days"], plan.start_date, today, zone,
                        last.get((patient_id, line["instrument"])), rules.local_days(recent[line["instrument"]], zone))
            for line in plan.assessments
        ]
        return SchedulePublic(timezone=timezone, plan_id=plan.id, today=today,
                              items=[ScheduleItem.model_validate(item, from_attributes=True) for item in items])

    return tag.value, build


# The contract: an assessment overdue by more than 3 days raises an alert, once per missed due date.
OVERDUE_ALERT_AFTER_DAYS = 3
# Active plans looked at per transaction by the sweep: bounded memory and short transactions at any scale.
SWEEP_BATCH = 500
# Names the alert of one missed due date, so that every sweep, retry and concurrent worker names it alike and the
# alerts' unique (source_type, source_id, kind) index keeps exactly one.
_MISSED_DUE_DATE = uuid.UUID("6b3c1f0e-8f4a-4d52-9a57-3f0d2b7c9e11")


def missed_due_date_id(plan_id: uuid.UUID, instrument: str, due_on: dt.date) -> uuid.UUID:
    return uuid.uuid5(_MISSED_DUE_DATE, f"{plan_id}:{instrument}:{due_on.isoformat()}")


async def sweep_overdue(sessions: async_sessionmaker[AsyncSession], now: dt.datetime | None = None) -> int:
    """Raises an `assessment_overdue` alert (and its `alert.raised` event) for every assessment of an active plan
    more than 3 local days past its due date, once per missed due date. Returns how many alerts it raised; running
    it again, or in several workers at once, raises no duplicates."""
    now = now or utcnow()
    raised, after = 0, None
    while True:
        async with sessions() as session:
            plans = await queries.active_plans(session, after=after, limit=SWEEP_BATCH)
            if not plans:
                return raised
            instruments = {line["instrument"] for plan in plans for line in plan.assessments}
            last = await queries.last_scores(session, {plan.patient_id for plan in plans}, instruments)
            for plan in plans:
                zone = ZoneInfo(plan.timezone)
                today = now.astimezone(zone).date()
                for line in plan.assessments:
                    last_at = last.get((plan.patient_id, line["instrument"]))
                    due = rules.next_due_on(plan.start_date, line["every_days"],
                                            last_at.astimezone(zone).date() if last_at else None)
                    late = rules.overdue_days(due, today)
                    if late <= OVERDUE_ALERT_AFTER_DAYS:
                        continue
                    name = INSTRUMENTS[line["instrument"]].name
                    if await alerts.raise_alert(
                        session, None, organization_id=plan.organization_id, patient_id=plan.patient_id,
                        kind="assessment_overdue", priority=AlertPriority.high, source_type="schedule",
                        source_id=missed_due_date_id(plan.id, line["instrument"], due),
                        message=f"{name} was due on {due.isoformat()} and is {late} days overdue",
                    ):
                        raised += 1
            await session.commit()
            after = plans[-1].id
