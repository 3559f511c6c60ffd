"""The progress report: everything a clinician files or sends about one patient's treatment, as a PDF.

The data is gathered first, through the services that own it, then drawn in a worker thread (`api.reports.render`
is CPU work: matplotlib and reportlab would otherwise hold the event loop for the whole drawing). The patient is
reached through `api.authz.authorize_patient` (audited as `report.read`). Charts and their clinical numbers come
from the chart service itself (`api.charts.service.chart`, which audits each as `chart.read`); sessions, the plan
and the patient are presented by their own services' `present`, which choose the patient's views for a patient.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from anyio import CapacityLimiter, to_thread
from sqlmodel.ext.asyncio.session import AsyncSession

from api.alerts.schemas import AlertPublic
from api.authz import STAFF, authorize_patient
from api.charts import service as charts
from api.charts.schemas import ChartQuery
from api.instruments.registry import INSTRUMENTS
from api.patients import service as patients
from api.plans import service as plans
from api.plans.schemas import PlanView
from api.reports import queries
from api.reports.schemas import ReportQuery
from api.security.tokens import Caller
from api.sessions import queries as session_queries
from api.sessions import service as sessions
from models.base import utcnow

# With no scheduled instrument (no plan, or a plan without assessments) the report charts the primary outcome.
DEFAULT_INSTRUMENTS = ("gad7",)
# The chart's default bucket: durability judged week by week, the clinic's usual cadence (docs/charts.md).
BUCKET = "week"
# Reports drawn at once by one process; more wait their turn. Drawing holds the GIL most of the time, so more
# threads would not draw faster, only slow down every other request of the process (a report costs about eighty
# times the CPU of a chart: bench/README.md).
CONCURRENT_RENDERS = 2


@dataclass(frozen=True, slots=True)
class Report:
    pdf: bytes
    filename: str  # no patient name: it would end up in logs and download folders


def _instruments(plan: PlanView | None) -> tuple[str, ...]:
    scheduled = tuple(entry.instrument for entry in plan.assessments) if plan else ()
    return scheduled or DEFAULT_INSTRUMENTS


async def report(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID, query: ReportQuery, renders: CapacityLimiter
) -> Report:
    # Imported on the first report: matplotlib and reportlab hold about 60 MB, which processes that never draw one
    # (most of them) need not carry (issue 13's memory target).
    from api.reports import render

    patient = await authorize_patient(session, caller, patient_id, "report.read")
    zone = ZoneInfo(patient.timezone)
    found = await queries.chart_plan(session, patient.id)
    plan = plans.present(found, caller) if found else None
    # The charts validate and default the period (422 before the rest is read); the report shows the same one.
    charted = [render.InstrumentChart(
        name=INSTRUMENTS[code].name, total_max=INSTRUMENTS[code].total_max,
        chart=await charts.chart(session, caller, patient.id, ChartQuery(
            instrument=code, bucket=BUCKET, date_from=query.date_from, date_to=query.date_to)))
        for code in _instruments(plan)]
    period = charted[0].chart
    # The sessions listed are the ones the charts mark: signed, dosed on a local day of the period.
    rows = await queries.sessions(session, patient.id, [marked.id for marked in period.sessions])
    clinical = caller.role in STAFF  # addenda and alerts are staff-only records (GET /v1/alerts is staff-only)
    addenda = await session_queries.addenda(session, [row.id for row in rows]) if clinical else {}
    alerts = [AlertPublic.model_validate(alert, from_attributes=True)
              for alert in await queries.open_alerts(session, patient.id)] if clinical else None
    data = render.ReportData(
        organization=await queries.organization_name(session, patient.organization_id),
        patient=(await patients.present(session, [patient]))[0],
        generated_at=utcnow(), date_from=period.date_from, date_to=period.date_to,
        plan=plan,
        charts=charted,
        sessions=[sessions.present(row, caller, addenda.get(row.id, [])) for row in rows],
        alerts=alerts,
        instrument_names={code: instrument.name for code, instrument in INSTRUMENTS.items()},
    )
    await session.commit()  # the audit events
    pdf = await to_thread.run_sync(render.pdf, data, limiter=renders)
    return Report(pdf=pdf, filename=f"progress-report-{data.generated_at.astimezone(zone).date()}.pdf")
