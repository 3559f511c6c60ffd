"""The dashboard's query and answer (docs/dashboard.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from api.instruments.schemas import InstrumentCodeEnum, ScoreSeverity
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery

Sort = Literal["alerts", "change", "last_activity", "name"]
Trend = Literal["improving", "stable", "worsening"]


@dataclass(frozen=True, slots=True)
class DashboardQuery:
    """Query parameters (a FastAPI dependency)."""

    sort: Annotated[Sort, Query(description="alerts: urgent open alerts first, then any open alert; change: the "
                                            "largest rise from baseline first; last_activity: most recent first; "
                                            "name")] = "alerts"
    q: Annotated[str | None, Query(min_length=1, max_length=200, description="Part of the patient's name")] = None
    overdue: Annotated[bool | None, Query(description="true: only patients with an overdue assessment; false: "
                                                      "only those without")] = None
    trend: Annotated[Trend | None, Query(description="Only patients with this trend")] = None
    limit: LimitQuery = DEFAULT_LIMIT
    cursor: CursorQuery = None


class LatestScore(BaseModel):
    instrument: InstrumentCodeEnum
    total: int
    severity: ScoreSeverity | None
    recorded_at: dt.datetime


class DashboardRow(BaseModel):
    patient_id: uuid.UUID
    full_name: str
    plan_status: str | None = Field(description="The chart plan's status (active, else the latest-started paused, "
                                                "completed or discontinued plan); null without one")
    instrument: InstrumentCodeEnum = Field(description="The instrument shown: the chart plan's first scheduled one, else gad7")
    latest: LatestScore | None
    baseline_total: int | None = Field(description="The chart's baseline (docs/charts.md)")
    change: int | None
    percent_change: float | None
    trend: Trend | None = Field(description="Mean of the last 14 days against the 14 before, by the instrument's "
                                            "clinically meaningful change; null without scores in both")
    last_session_at: dt.datetime | None
    last_activity_at: dt.datetime | None = Field(description="The latest live score of any instrument or signed "
                                                            "session")
    next_assessment_due: dt.date | None = Field(description="The earliest next_due_on of the schedule (local date)")
    overdue: bool = Field(description="An assessment of the schedule is past due")
    adherence: float | None = Field(description="The mean of the schedule's adherence_28d; null without one")
    open_alerts: int
    urgent_alerts: int


class DashboardPage(BaseModel):
    items: list[DashboardRow]
    next_cursor: str | None
