"""Supervised dosing sessions: drafts edited under If-Match, signing into an immutable record, addenda.

Every session is reached through its patient with `api.authz.authorize_patient` (which audits the access); a session
of a patient the caller may not see answers exactly like a session that does not exist. Statements live in
`api.sessions.queries`, the warning rules in `api.sessions.warnings`. Each draft change bumps `revision`; signing
bumps it once more, freezes the warnings and adds a `session.signed` outbox event in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from api import outbox
from api.alerts import service as alerts
from api.audit import service as audit
from api.authz import READ_SESSIONS, WRITE_SESSIONS, Permission, authorize_patient, authorize_patient_of
from api.errors import Conflict, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from api.preconditions import check_if_match
from api.security.tokens import Caller
from api.sync import first_page_watermark, refuse_filter
from api.sessions import queries, warnings
from api.sessions.schemas import (
    CONTENT_FIELDS,
    AddendumCreate,
    AddendumPublic,
    PatientSessionPublic,
    SessionCreate,
    SessionPage,
    SessionPublic,
    SessionUpdate,
    SessionView,
)
from models.alerts import AlertPriority
from models.base import utcnow
from models.dosing_sessions import DosingSession, SessionAddendum, SessionStatus
from models.organizations import Organization
from models.patients import Patient
from models.plans import TreatmentPlan
from models.users import Role

# An unsigned draft may still be wrong: patients see their sessions once signed.
PATIENT_VISIBLE = (SessionStatus.signed,)
SESSION_NOT_FOUND = "Session not found"
SIGNED_IS_FINAL = "A signed session cannot be changed; add an addendum (POST /v1/sessions/{session_id}/addenda)"
REQUIRED_TO_SIGN = ("ended_at", "discharge")
JSON_FIELDS = frozenset({"vitals", "adverse_events", "discharge"})


def etag(row: DosingSession) -> str:
    """A strong entity tag naming the session's revision (If-Match compares strongly, RFC 9110 13.1.1)."""
    return f'"{row.id}-{row.revision}"'


def present(row: DosingSession, viewer: Caller, addenda: Sequence[SessionAddendum] = ()) -> SessionView:
    columns = {field: getattr(row, field) for field in DosingSession.model_fields}
    # Patients never see notes, addenda or warnings: their model has no fields for them.
    if viewer.role == Role.patient:
        return PatientSessionPublic.model_validate(columns)
    return SessionPublic.model_validate(
        columns | {"addenda": [AddendumPublic.model_validate(a, from_attributes=True) for a in addenda]})


def _content(row: DosingSession) -> dict[str, Any]:
    """The stored draft as SessionCreate input."""
    return {field: getattr(row, field) for field in CONTENT_FIELDS}


def _columns(content: SessionCreate) -> dict[str, Any]:
    """Column values of validated content: JSON columns as JSON (instants in UTC), vitals in time order."""
    values = content.model_dump(exclude=JSON_FIELDS)
    values.update(content.model_dump(mode="json", include=JSON_FIELDS))
    values["vitals"] = [vital.model_dump(mode="json") for vital in sorted(content.vitals, key=lambda v: v.at)]
    return values


def _flagged(found: list[dict[str, str]]) -> dict[str, Any]:
    return {"warnings": found, "has_warnings": bool(found)}


async def _authorized_session(
    session: AsyncSession, caller: Caller, session_id: uuid.UUID, action: str, allow: Permission
) -> tuple[DosingSession, Patient]:
    row = await queries.get(session, session_id)
    patient_id = row.patient_id if row else None
    hidden_draft = row is not None and row.status not in PATIENT_VISIBLE
    patient = await authorize_patient_of(session, caller, patient_id, action, allow=allow, resource_type="session",
                                         resource_id=session_id, not_found=SESSION_NOT_FOUND)
    if caller.role == Role.patient and hidden_draft:
        await audit.record_denied(session, caller, action, resource_type="session", resource_id=session_id,
                                  patient_id=patient_id)
        raise NotFound(SESSION_NOT_FOUND)
    return row, patient


def _check_if_match(row: DosingSession, if_match: str | None) -> None:
    check_if_match(etag(row), if_match, noun="session", revision=row.revision)


async def _linked_plan(
    session: AsyncSession, patient: Patient, content: SessionCreate, *, verify: bool
) -> TreatmentPlan | None:
    """The plan the session is given under. When `verify`, it must be the patient's active plan (422 otherwise):
    checked when the link is made or changed, not again when a later edit touches other fields."""
    if content.plan_id is None:
        return None
    if not verify:
        return await queries.plan(session, content.plan_id)
    active = await queries.active_plan(session, patient.id)
    if active is None or active.id != content.plan_id:
        detail = ("The patient has no active plan" if active is None else "Not the patient's active plan")
        raise ValidationFailed.at(
            ["body", "plan_id"], f"{detail}; link the active plan, or send plan_id null with an unplanned_reason")
    return active


async def _check_supervisor(session: AsyncSession, patient: Patient, user_id: uuid.UUID) -> None:
    if not await queries.is_care_team_clinician(session, patient, user_id):
        raise ValidationFailed.at(["body", "supervising_clinician_id"],
                                  "Must be an active clinician on the patient's care team as prescriber or "
                                  "monitor")


async def _warnings(
    session: AsyncSession, patient: Patient, content: SessionCreate, plan: TreatmentPlan | None
) -> list[dict[str, str]]:
    organization = await session.get(Organization, patient.organization_id)
    assert organization is not None  # a patient's organization always exists (foreign key)
    return warnings.compute(content, plan, organization, ZoneInfo(patient.timezone))


async def create_session(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID, body: SessionCreate
) -> DosingSession:
    session_id = uuid.uuid4()
    patient = await authorize_patient(session, caller, patient_id, "session.create", allow=WRITE_SESSIONS,
                                      resource_type="session", resource_id=session_id)
    await _check_supervisor(session, patient, body.supervising_clinician_id)
    plan = await _linked_plan(session, patient, body, verify=True)
    now = utcnow()
    row = DosingSession(
        id=session_id, patient_id=patient.id, status=SessionStatus.draft, revision=1, created_by=caller.user_id,
        created_at=now, updated_by=caller.user_id, updated_at=now,
        **_columns(body), **_flagged(await _warnings(session, patient, body, plan)),
    )
    session.add(row)
    await session.commit()
    return row


async def authorize_replay(session: AsyncSession, caller: Caller, session_id: str) -> None:
    """An Idempotency-Key replay of a session's (or its addendum's) creation is a read of the session."""
    await _authorized_session(session, caller, uuid.UUID(session_id), "session.read", READ_SESSIONS)


async def read_session(session: AsyncSession, caller: Caller, session_id: uuid.UUID) -> tuple[SessionView, str]:
    row, _ = await _authorized_session(session, caller, session_id, "session.read", READ_SESSIONS)
    addenda = await queries.addenda(session, [row.id]) if caller.role != Role.patient else {}
    answer = present(row, caller, addenda.get(row.id, [])), etag(row)
    await session.commit()
    return answer


async def list_sessions(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID, *, status: SessionStatus | None,
    updated_since: dt.datetime | None, limit: int, cursor: str | None,
) -> SessionPage:
    """Sessions are never deleted, and nothing leaves a caller's view: a patient's draft appears when it is signed
    (its updated_at is the signing), and signed sessions stay signed. So delta sync has no tombstones to hand out."""
    if updated_since is not None and status is not None:
        raise refuse_filter("status")
    watermark = first_page_watermark(cursor)
    await authorize_patient(session, caller, patient_id, "session.list", allow=READ_SESSIONS,
                            resource_type="session")
    statuses = PATIENT_VISIBLE if caller.role == Role.patient else tuple(SessionStatus)
    if status is not None:
        statuses = tuple(s for s in statuses if s == status)
    rows, next_cursor = await queries.page(session, patient_id, statuses=statuses, updated_since=updated_since,
                                           limit=limit, cursor=cursor, carry=watermark.isoformat())
    addenda = await queries.addenda(session, [row.id for row in rows]) if caller.role != Role.patient else {}
    await session.commit()
    return SessionPage(items=[present(row, caller, addenda.get(row.id, [])) for row in rows], next_cursor=next_cursor,
                       sync_watermark=watermark)


async def update_session(
    session: AsyncSession, caller: Caller, session_id: uuid.UUID, if_match: str | None, body: SessionUpdate
) -> tuple[SessionView, str]:
    """Merges the sent top-level fields into the draft, validates the result as a whole and recomputes the
    warnings. Nothing changed: the session as it is, no new revision. A signed session is 409 whatever the
    If-Match, because no fresher read could make the edit possible."""
    row, patient = await _authorized_session(session, caller, session_id, "session.update", WRITE_SESSIONS)
    if row.status == SessionStatus.signed:
        raise Conflict(SIGNED_IS_FINAL)
    _check_if_match(row, if_match)
    sent = body.model_dump(mode="json", exclude_unset=True)
    try:
        merged = SessionCreate.model_validate(_content(row) | sent)
    except ValidationError as error:
        raise ValidationFailed.of_body(error) from None
    if merged.supervising_clinician_id != row.supervising_clinician_id:
        await _check_supervisor(session, patient, merged.supervising_clinician_id)
    plan = await _linked_plan(session, patient, merged, verify=merged.plan_id != row.plan_id)
    values = _columns(merged) | _flagged(await _warnings(session, patient, merged, plan))
    changed = {name: value for name, value in values.items() if getattr(row, name) != value}
    if changed:
        row = await _advance(session, caller, row, changed, stale=PreconditionFailed)
    answer = present(row, caller), etag(row)  # a draft has no addenda
    await session.commit()
    return answer


async def sign_session(
    session: AsyncSession, caller: Caller, session_id: uuid.UUID, if_match: str | None
) -> tuple[SessionView, str]:
    """Signs the draft: records signer and time, computes the warnings one last time and freezes the record.
    If-Match is optional: without one the draft as currently stored is signed, and a change that lands between
    reading and signing makes this request 409 (412 when an If-Match named the revision read)."""
    row, patient = await _authorized_session(session, caller, session_id, "session.sign", WRITE_SESSIONS)
    if row.status == SessionStatus.signed:
        raise Conflict(SIGNED_IS_FINAL)
    if row.supervising_clinician_id != caller.user_id:
        patient_id = patient.id  # read before the denial's rollback expires it
        await audit.record_denied(session, caller, "session.sign", resource_type="session", resource_id=session_id,
                                  patient_id=patient_id)
        raise Forbidden("A session is signed by its supervising clinician")
    if if_match is not None:
        _check_if_match(row, if_match)
    missing = [name for name in REQUIRED_TO_SIGN if getattr(row, name) is None]
    if missing:
        raise Conflict(f"A session needs {' and '.join(missing)} before it can be signed")
    try:
        content = SessionCreate.model_validate(_content(row))
    except ValidationError:  # stored under rules since tightened: the draft must be corrected first
        raise Conflict("This draft no longer passes validation; edit it with PATCH, then sign") from None
    plan = await _linked_plan(session, patient, content, verify=False)
    now = utcnow()
    signature = {"status": SessionStatus.signed, "signed_by": caller.user_id, "signed_at": now, "updated_at": now}
    row = await _advance(session, caller, row, signature | _flagged(await _warnings(session, patient, content, plan)),
                         stale=Conflict if if_match is None else PreconditionFailed)
    outbox.enqueue(session, patient.organization_id, "session.signed",
                   {"session_id": row.id, "patient_id": row.patient_id})
    await _raise_alerts(session, caller, patient, row)
    answer = present(row, caller), etag(row)
    await session.commit()
    return answer


async def _raise_alerts(session: AsyncSession, caller: Caller, patient: Patient, row: DosingSession) -> None:
    """A signed record's warnings become clinician alerts: severe adverse events urgent, the rest high."""
    severe = [w for w in row.warnings if w["code"] == warnings.SEVERE_ADVERSE_EVENT]
    others = [w for w in row.warnings if w["code"] != warnings.SEVERE_ADVERSE_EVENT]
    for kind, priority, raised in ((warnings.SEVERE_ADVERSE_EVENT, AlertPriority.urgent, severe),
                                   ("session_warning", AlertPriority.high, others)):
        if raised:
            await alerts.raise_alert(
                session, caller, organization_id=patient.organization_id, patient_id=patient.id, kind=kind,
                priority=priority, source_type="session", source_id=row.id,
                message="; ".join(w["message"] for w in raised)[:500],
            )


async def _advance(
    session: AsyncSession, caller: Caller, row: DosingSession, values: dict[str, Any], *,
    stale: type[Conflict | PreconditionFailed],
) -> DosingSession:
    """Writes the next revision if nobody wrote one since `row` was read; otherwise `stale`, nothing written."""
    updated = await queries.advance(session, row.id, row.revision,
                                    {"updated_by": caller.user_id, "updated_at": utcnow()} | values)
    if updated is None:
        await session.rollback()
        raise stale("The session was changed by someone else meanwhile; read it again and retry")
    return updated


async def add_addendum(
    session: AsyncSession, caller: Caller, session_id: uuid.UUID, body: AddendumCreate
) -> SessionAddendum:
    """Appends a correction to a signed session. A draft has none: it is still edited directly (409)."""
    row, _ = await _authorized_session(session, caller, session_id, "session.addendum", WRITE_SESSIONS)
    if row.status != SessionStatus.signed:
        raise Conflict("Addenda are for signed sessions; edit the draft itself with PATCH")
    now = utcnow()
    addendum = SessionAddendum(session_id=row.id, text=body.text, author_id=caller.user_id, created_at=now)
    session.add(addendum)
    # The care team's view of the session now lists one more addendum: a change for delta sync.
    await queries.touch(session, row.id, now)
    await session.commit()
    return addendum
