import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import CallerDep, ScoreExporter, SessionDep
from api.errors import problem_responses
from api.exports import formats, service
from api.types import BoundedInstant
from api.routing import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["exports"])

_PATIENT_EXPORT = {200: {"description": "format=fhir: a FHIR R4 Bundle (collection); format=csv: the patient's scores",
                         "content": {service.FHIR_JSON: {"schema": {"type": "object"}},
                                     "text/csv": {"schema": {"type": "string"}}}}}
_BULK_EXPORT = {200: {"description": "Every score of the organization changed since updated_since, oldest change "
                                     "first, tombstones included",
                      "headers": {"X-Sync-Watermark": {"description": "The next pull's updated_since (RFC 3339)",
                                                       "schema": {"type": "string", "format": "date-time"}}},
                      "content": {"text/csv": {"schema": {"type": "string"}},
                                  service.NDJSON: {"schema": {"type": "string"}}}}}


@router.get("/patients/{patient_id}/export", response_class=Response,
            responses={**_PATIENT_EXPORT, **problem_responses(401, 403, 404, 422)})
async def export_patient(
    patient_id: uuid.UUID, caller: CallerDep, session: SessionDep,
    format: Annotated[Literal["fhir", "csv"], Query(description="fhir: FHIR R4 Bundle; csv: the scores")],
) -> Response:
    """The patient's record for another system: FHIR R4 (Patient, CarePlans, a Procedure per signed session, a
    QuestionnaireResponse and an Observation per live score), or their scores as CSV. A patient may export their
    own (without clinician-only notes). API clients need patients:read, plans:read, sessions:read and scores:read
    for FHIR, scores:read for CSV."""
    if format == "fhir":
        body = await service.patient_fhir(session, caller, patient_id)
        return Response(body, media_type=service.FHIR_JSON)
    text, name = await service.patient_csv(session, caller, patient_id)
    return Response(text, media_type=service.CSV, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/exports/scores", response_class=StreamingResponse,
            responses={**_BULK_EXPORT, **problem_responses(401, 403, 422)})
async def export_scores(
    caller: ScoreExporter, session: SessionDep, request: Request,
    format: Annotated[Literal["csv", "ndjson"], Query(description="csv (RFC 4180) or ndjson (a JSON object a line)")],
    updated_since: Annotated[BoundedInstant | None, Query(
        description="Only changes at or after this server time: the previous pull's X-Sync-Watermark")] = None,
) -> StreamingResponse:
    """Every score of the caller's organization changed since the watermark (all of them without one), tombstones
    included with deleted_at, streamed in constant memory; admins and API clients with scores:read. Send the
    answer's X-Sync-Watermark as the next pull's updated_since."""
    until = service.watermark()
    if updated_since is not None and updated_since > until:
        until = updated_since  # nothing after it is settled yet: an empty answer, and the same watermark back
    await service.start_bulk(session, caller, format=format, updated_since=updated_since, until=until)
    chunks = service.bulk_chunks(request.app.state.engine, caller.organization_id, format=format,
                                 updated_since=updated_since, until=until)
    extension, media_type = ("csv", service.CSV) if format == "csv" else ("ndjson", service.NDJSON)
    name = formats.filename("scores", "export", extension, until)
    headers = {"X-Sync-Watermark": formats.instant(until), "Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(chunks, media_type=media_type, headers=headers)
