import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from api.deps import CallerDep, SessionDep, query_parameters
from api.errors import problem_responses
from api.reports import service
from api.reports.schemas import ReportQuery
from api.routing import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["reports"])

ReportQueryDep = Annotated[ReportQuery, Depends(query_parameters(ReportQuery))]
PDF = "application/pdf"


@router.get(
    "/patients/{patient_id}/report", response_class=Response, response_model=None,
    responses={200: {"description": "The progress report (docs/reports.md)",
                     "content": {PDF: {"schema": {"type": "string", "format": "binary"}}}},
               **problem_responses(401, 404, 422)},
)
async def patient_report(patient_id: uuid.UUID, caller: CallerDep, session: SessionDep, query: ReportQueryDep,
                         request: Request) -> Response:
    """The progress report as a PDF: patient and plan, a chart and the outcomes per scheduled instrument, signed
    sessions and, for the care team, notes and open alerts (docs/reports.md)."""
    report = await service.report(session, caller, patient_id, query, request.app.state.report_renders)
    return Response(report.pdf, media_type=PDF,
                    headers={"Content-Disposition": f'inline; filename="{report.filename}"'})
