"""The chart's query parameters and answer (docs/charts.md)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, BeforeValidator, Field

from api.instruments.schemas import BandPublic, InstrumentCode, InstrumentCodeEnum
from api.types import BoundedDate

Bucket = Literal["day", "week", "month"]
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_only(value: object) -> object:
    # Pydantic alone would also take "2026-11-20T10:00" or a Unix timestamp; the range is calendar dates only.
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date YYYY-MM-DD (a calendar day in the patient's time zone)")
    return value


LocalDate = Annotated[BoundedDate, BeforeValidator(_iso_date_only)]


@dataclass(frozen=True, slots=True)
class ChartQuery:
    """Query parameters (a FastAPI dependency)."""

    instrument: Annotated[InstrumentCode, Query(description="A registered instrument (GET /v1/instruments)")]
    bucket: Annotated[Bucket, Query(description="Calendar days, ISO weeks (Monday) or months, in the patient's "
                                                "time zone")] = "week"
    date_from: Annotated[LocalDate | None, Query(
        alias="from", description="First local day shown (inclusive); default one year before `to`")] = None
    date_to: Annotated[LocalDate | None, Query(
        alias="to", description="Last local day shown (inclusive); default today in the patient's time zone")] = None


class ScorePoint(BaseModel):
    """One score as the chart's analysis uses it."""

    total: int
    recorded_at: dt.datetime


class Baseline(ScorePoint):
    pre_treatment: bool = Field(
        description="True: the last score before the chart plan's first dose. False: no score was that early (or "
                    "there is no plan), so the baseline is the first score")


class ChartPoint(BaseModel):
    bucket_start: dt.date = Field(description="First local day of the bucket (a Monday for weeks, the 1st for months)")
    mean: float = Field(description="Mean total, rounded half up to 1 decimal")
    min: int
    max: int
    n: int


class ChartSession(BaseModel):
    id: uuid.UUID
    started_at: dt.datetime
    dose_mg: float
    route: str


class Durability(BaseModel):
    first_response_at: dt.datetime = Field(
        description="The first score after baseline, at or after the first dose, that met response")
    responding_now: bool = Field(description="The latest bucket's verdict: its mean meets response")
    lapses: int = Field(description="Buckets whose mean missed response right after one whose mean met it")
    response_since: dt.datetime | None = Field(
        description="Start of the current responding run: the first score of the first bucket of that run "
                    "(first_response_at when it is the first bucket); null when not responding now")
    days_sustained: float = Field(description="Days from response_since to the latest score (0 when not "
                                              "responding now), rounded half up to 2 decimals")


class ChartPublic(BaseModel):
    instrument: InstrumentCodeEnum
    bucket: Bucket
    timezone: str
    date_from: dt.date = Field(serialization_alias="from")
    date_to: dt.date = Field(serialization_alias="to")
    baseline: Baseline | None
    latest: ScorePoint | None
    change: int | None = Field(description="latest − baseline")
    percent_change: float | None = Field(
        description="change / baseline × 100, rounded half up to 1 decimal; null when baseline is 0")
    response: bool | None = Field(description="Reduction of at least 50 % from baseline; null unless GAD-7 or "
                                              "PHQ-9 with a baseline of at least 5")
    remission: bool | None = Field(description="latest below 5; null unless GAD-7 or PHQ-9 with a baseline of at "
                                               "least 5")
    clinically_meaningful_change: bool | None = Field(description="|change| ≥ the instrument's MCID; null without one")
    points: list[ChartPoint]
    sessions: list[ChartSession]
    bands: list[BandPublic]
    onset: float | None = Field(description="Days from the chart plan's first signed session to the first later "
                                            "score meeting response, rounded half up to 2 decimals")
    durability: Durability | None
