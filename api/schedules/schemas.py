"""The schedule's answer (docs/schedules.md)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from api.instruments.schemas import InstrumentCodeEnum


class ScheduleItem(BaseModel):
    instrument: InstrumentCodeEnum
    every_days: int
    last_completed_at: dt.datetime | None = Field(description="The last live score of this instrument since the "
                                                              "plan's start date; null when there is none")
    next_due_on: dt.date = Field(description="Local date: the last score's local date plus every_days, or the "
                                             "plan's start_date when there is none since it")
    overdue_days: int = Field(description="Local days today is past next_due_on (0 when not overdue)")
    adherence_28d: float | None = Field(
        description="min(1, distinct local days with a score over the last 28 days (or since the start) ÷ due dates "
                    "in that window, rounded up), to 2 decimals; null before the plan starts")


class SchedulePublic(BaseModel):
    timezone: str
    plan_id: uuid.UUID | None = Field(description="The active plan; null (and no items) without one")
    today: dt.date = Field(description="Today in the patient's time zone: the day the answer was computed for")
    items: list[ScheduleItem]
