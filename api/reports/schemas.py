"""The progress report's query parameters (docs/reports.md). The answer is a PDF, not a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query

from api.charts.schemas import LocalDate


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """Query parameters (a FastAPI dependency): the period shown, as the chart takes it."""

    date_from: Annotated[LocalDate | None, Query(
        alias="from", description="First local day shown (inclusive); default one year before `to`")] = None
    date_to: Annotated[LocalDate | None, Query(
        alias="to", description="Last local day shown (inclusive); default today in the patient's time zone")] = None
