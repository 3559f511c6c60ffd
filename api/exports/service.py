"""Exports: one patient's record (FHIR R4 or CSV of scores) and the organization's scores in bulk (CSV or NDJSON).

The patient export reaches its patient through `api.authz.authorize_patient` (audited as `export.read`); what an
API client needs depends on the format (`EXPORT_RECORD` for FHIR, `READ_SCORES` for CSV). The bulk export is for
admins and API clients holding `scores:read` (the route's dependency), audited once per pull.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.authz import EXPORT_RECORD, READ_SCORES, authorize_patient
from api.exports import formats, queries
from api.sync import SYNC_MARGIN
from api.security.tokens import Caller
from models.base import utcnow
from models.scores import Score
from models.users import Role

FHIR_JSON = "application/fhir+json"
CSV = "text/csv; charset=utf-8"
NDJSON = "application/x-ndjson"


async def patient_fhir(session: AsyncSession, caller: Caller, patient_id: uuid.UUID) -> str:
    """The Bundle as JSON. A patient's own copy leaves out clinician-only session notes (and draft sessions, which
    no export holds: only signed sessions are a clinical record)."""
    # Imported on the first FHIR export: the R4B models hold about 25 MB that other processes need not carry.
    from api.exports import fhir

    patient = await authorize_patient(session, caller, patient_id, "export.read", allow=EXPORT_RECORD,
                                      resource_type="export", resource_id=f"{patient_id}:fhir")
    plans = await queries.plans(session, patient.id)
    sessions = await queries.signed_sessions(session, patient.id)
    scores = await queries.live_scores(session, patient.id)
    bundle = fhir.bundle(patient, plans, sessions, scores, with_notes=caller.role != Role.patient, now=utcnow())
    await session.commit()
    return bundle.model_dump_json(exclude_none=True)


async def patient_csv(session: AsyncSession, caller: Caller, patient_id: uuid.UUID) -> tuple[str, str]:
    """The patient's live scores as CSV (oldest recorded first) and the file name."""
    patient = await authorize_patient(session, caller, patient_id, "export.read", allow=READ_SCORES,
                                      resource_type="export", resource_id=f"{patient_id}:csv")
    scores = await queries.live_scores(session, patient.id)
    writer = formats.CsvWriter()
    text = writer.header() + writer.rows(formats.record(_row(score, patient.external_id)) for score in scores)
    await session.commit()
    return text, formats.filename("scores", patient.id, "csv", utcnow())


def _row(score: Score, external_id: str | None) -> dict:
    return {**{column: getattr(score, column) for column in Score.model_fields}, "external_id": external_id}


def watermark() -> dt.datetime:
    """The next pull's `updated_since`, fixed before the first row is read: this pull exports exactly the changes
    stamped before it, the next one those from it on, so a change committed during the pull is never skipped (the
    score lists' delta-sync rule, api.sync.SYNC_MARGIN)."""
    return utcnow() - SYNC_MARGIN


async def start_bulk(
    session: AsyncSession, caller: Caller, *, format: str, updated_since: dt.datetime | None, until: dt.datetime
) -> None:
    """Audits the pull (once, whatever the number of rows) before anything is streamed."""
    audit.record(session, caller, "score.export", resource_type="score",
                 resource_id=f"{format}:{int(updated_since.timestamp()) if updated_since else ''}"
                             f"-{int(until.timestamp())}")
    await session.commit()


async def bulk_chunks(
    engine: AsyncEngine, organization_id: uuid.UUID, *, format: str, updated_since: dt.datetime | None,
    until: dt.datetime,
) -> AsyncIterator[str]:
    """The export's body, one chunk per keyset page."""
    writer = formats.CsvWriter() if format == "csv" else None
    if writer is not None:
        yield writer.header()
    async for rows in queries.changed_scores(engine, organization_id, updated_since, until):
        records = [formats.record(row) for row in rows]
        yield writer.rows(records) if writer is not None else formats.ndjson_lines(records)
