"""The single authorisation path for patient-scoped data (the contract's "Roles and who sees what").

A patient is visible to (a) that patient, (b) clinicians on the patient's care team, (c) admins of the patient's
organization; nothing crosses organizations. Every patient-scoped query filters through `visible_patients`, and
every route that takes a patient id loads it through `authorize_patient`: what the caller may not see does not
exist (404), and the attempt is audited as denied.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import ColumnElement, and_, exists, false, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.errors import Forbidden, NotFound
from api.security.tokens import Caller
from models.patients import CareTeamMember, Patient
from models.users import Role

ALL_ROLES: frozenset[Role] = frozenset(Role)
STAFF: frozenset[Role] = frozenset({Role.admin, Role.clinician})


def on_care_team(user_id: uuid.UUID, patient_id: ColumnElement) -> ColumnElement[bool]:
    return exists().where(CareTeamMember.patient_id == patient_id, CareTeamMember.user_id == user_id)


def visible_patients(caller: Caller) -> ColumnElement[bool]:
    """WHERE clause on `Patient` selecting exactly the patients the caller may see."""
    same_org = Patient.organization_id == caller.organization_id
    if caller.role == Role.admin:
        return same_org
    if caller.role == Role.clinician:
        return and_(same_org, on_care_team(caller.user_id, Patient.id))
    if caller.role == Role.patient and caller.patient_id is not None:
        return and_(same_org, Patient.id == caller.patient_id)
    return false()


async def authorize_patient(
    session: AsyncSession,
    caller: Caller,
    patient_id: uuid.UUID,
    action: str,
    *,
    roles: Collection[Role] = ALL_ROLES,
    resource_type: str = "patient",
    resource_id: object | None = None,
) -> Patient:
    """Loads a patient the caller may see and act on, recording the access in the audit log.

    Visibility is checked before the role, so a caller learns nothing about a patient it may not see (404) and
    only gets 403 for a patient it can see but may not act on in this way. The audit event joins the request's
    transaction; a denied attempt is committed at once.
    """
    patient = (
        await session.exec(select(Patient).where(Patient.id == patient_id, visible_patients(caller)))
    ).scalar_one_or_none()
    if patient is None:
        await audit.record_denied(session, caller, action, resource_type=resource_type,
                                  resource_id=resource_id or patient_id, patient_id=patient_id)
        raise NotFound("Patient not found")
    if caller.role not in roles:
        await audit.record_denied(session, caller, action, resource_type=resource_type,
                                  resource_id=resource_id or patient_id, patient_id=patient_id)
        raise Forbidden(f"The {caller.role.value} role may not perform {action}")
    audit.record(session, caller, action, resource_type=resource_type, resource_id=resource_id or patient_id,
                 patient_id=patient_id)
    return patient


async def authorize_patient_of(
    session: AsyncSession,
    caller: Caller,
    patient_id: uuid.UUID | None,
    action: str,
    *,
    roles: Collection[Role] = ALL_ROLES,
    resource_type: str,
    resource_id: object,
    not_found: str,
) -> Patient:
    """`authorize_patient` for routes addressed by a resource's own id (a plan, a session, a score).

    `patient_id` is the loaded resource's patient, or None when there is no such resource; read it before calling,
    since a denial rolls the session back and expires loaded objects. A resource that does not exist and one whose
    patient the caller may not see get the same 404 with the same detail, and both attempts are audited.
    """
    if patient_id is None:
        await audit.record_denied(session, caller, action, resource_type=resource_type, resource_id=resource_id)
        raise NotFound(not_found)
    try:
        return await authorize_patient(session, caller, patient_id, action, roles=roles,
                                       resource_type=resource_type, resource_id=resource_id)
    except NotFound:
        raise NotFound(not_found) from None
