"""Patients, care teams and enrollment codes. Every patient is reached through `api.authz`."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.auth.service import CODE_ALPHABET, CODE_LENGTH, format_code
from api.authz import (
    MANAGE_CARE_TEAM,
    MANAGE_PATIENT,
    OWN_TIMEZONE,
    READ_PATIENT,
    authorize_patient,
    visible_patients,
)
from api.errors import Conflict, NotFound, ValidationFailed
from api.pagination import SortKey, keyset, page_of
from api.patients.schemas import (
    CareTeamMemberPublic,
    EnrollmentCodePublic,
    PatientCreate,
    PatientPublic,
    PatientUpdate,
)
from api.security.tokens import Caller, digest
from api.settings import Settings
from api.users.service import get_staff_member
from models.base import utcnow
from models.patients import CareTeamMember, CareTeamRole, EnrollmentCode, Patient
from models.users import Role, User

PATIENT_ORDER: list[SortKey] = [(Patient.full_name, "asc"), (Patient.id, "asc")]
EXTERNAL_ID_TAKEN = "Another patient of this organization already has this external_id"


async def present(session: AsyncSession, patients: Sequence[Patient]) -> list[PatientPublic]:
    """Public views of patients with their care teams, in two queries for the whole page."""
    ids = [p.id for p in patients]
    if not ids:
        return []
    teams: dict[uuid.UUID, list[CareTeamMemberPublic]] = defaultdict(list)
    members = await session.exec(
        select(CareTeamMember, User.full_name)
        .join(User, User.id == CareTeamMember.user_id)
        .where(CareTeamMember.patient_id.in_(ids))
        .order_by(CareTeamMember.added_at, CareTeamMember.user_id)
    )
    for member, full_name in members.all():
        teams[member.patient_id].append(
            CareTeamMemberPublic(user_id=member.user_id, role=member.role, full_name=full_name, added_at=member.added_at)
        )
    with_login = set((await session.exec(select(User.patient_id).where(User.patient_id.in_(ids)))).scalars().all())
    return [
        PatientPublic(
            **p.model_dump(exclude={"care_team"}), has_login=p.id in with_login, care_team=teams.get(p.id, [])
        )
        for p in patients
    ]


async def create_patient(session: AsyncSession, caller: Caller, request: PatientCreate) -> Patient:
    patient = Patient(organization_id=caller.organization_id, **request.model_dump())
    session.add(patient)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise Conflict(EXTERNAL_ID_TAKEN) from None
    # Flushed separately: without ORM relationships the unit of work does not order the two inserts by their FK.
    if caller.role == Role.clinician:
        session.add(CareTeamMember(patient_id=patient.id, user_id=caller.user_id, role=CareTeamRole.prescriber))
    audit.record(session, caller, "patient.create", resource_type="patient", resource_id=patient.id,
                 patient_id=patient.id)
    await session.commit()
    return patient


def named_like(stmt: Select, q: str | None) -> Select:
    """Narrows a statement on Patient to names containing `q`, case-insensitive and literally (no wildcards)."""
    return stmt.where(func.lower(Patient.full_name).contains(q.lower(), autoescape=True)) if q else stmt


async def list_patients(
    session: AsyncSession, caller: Caller, *, q: str | None, limit: int, cursor: str | None
) -> tuple[list[Patient], str | None]:
    stmt = named_like(select(Patient).where(visible_patients(caller)), q)
    rows = (await session.exec(keyset(stmt, PATIENT_ORDER, limit=limit, cursor=cursor))).scalars().all()
    patients, next_cursor = page_of(rows, PATIENT_ORDER, limit=limit)
    audit.record_patient_reads(session, caller, "patient.list", "patient", [(p.id, p.id) for p in patients])
    return patients, next_cursor


async def authorize_replay(session: AsyncSession, caller: Caller, stored: dict) -> None:
    """An Idempotency-Key replay of a patient's registration is a read of the patient (api.idempotency)."""
    await authorize_patient(session, caller, uuid.UUID(stored["id"]), "patient.read", allow=READ_PATIENT)


async def update_patient(session: AsyncSession, caller: Caller, patient_id: uuid.UUID, request: PatientUpdate) -> Patient:
    changes = request.model_dump(exclude_unset=True)
    # A travelling patient sets their own time zone (their days and reminders follow it), and nothing else of the
    # record: the contract's Auth section.
    allow = OWN_TIMEZONE if changes.keys() <= {"timezone"} else MANAGE_PATIENT
    patient = await authorize_patient(session, caller, patient_id, "patient.update", allow=allow)
    required = [name for name in ("full_name", "date_of_birth", "timezone") if name in changes and changes[name] is None]
    if required:
        raise ValidationFailed(
            f"{', '.join(required)} cannot be cleared",
            errors=[{"loc": ["body", name], "msg": "cannot be null"} for name in required],
        )
    for name, value in changes.items():
        setattr(patient, name, value)
    patient.updated_at = utcnow()
    session.add(patient)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(EXTERNAL_ID_TAKEN) from None
    return patient


async def assign_care_team_member(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID, user_id: uuid.UUID, role: CareTeamRole
) -> tuple[CareTeamMemberPublic, bool]:
    """Adds or re-roles a clinician on the care team; returns (member, created)."""
    await authorize_patient(session, caller, patient_id, "care_team.assign", allow=MANAGE_CARE_TEAM,
                            resource_type="care_team_member", resource_id=user_id)
    user = await get_staff_member(session, caller.organization_id, user_id)
    if user is None:
        raise NotFound("User not found")
    if user.role != Role.clinician or not user.is_active:
        raise ValidationFailed.at(["path", "user_id"], "Only active clinicians can join a care team")
    member = await session.get(CareTeamMember, (patient_id, user_id))
    created = member is None
    if member is None:
        member = CareTeamMember(patient_id=patient_id, user_id=user_id, role=role)
    else:
        member.role = role
    session.add(member)
    await session.commit()
    public = CareTeamMemberPublic(user_id=user.id, role=member.role, full_name=user.full_name, added_at=member.added_at)
    return public, created


async def remove_care_team_member(
    session: AsyncSession, caller: Caller, patient_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    await authorize_patient(session, caller, patient_id, "care_team.remove", allow=MANAGE_CARE_TEAM,
                            resource_type="care_team_member", resource_id=user_id)
    member = await session.get(CareTeamMember, (patient_id, user_id))
    if member is None:
        raise NotFound("This user is not on the patient's care team")
    await session.delete(member)
    await session.commit()


async def issue_enrollment_code(
    session: AsyncSession, settings: Settings, caller: Caller, patient_id: uuid.UUID
) -> EnrollmentCodePublic:
    # Also for a patient who already has a login (a lost phone, a forgotten password): enrolling with the code then
    # resets that login's email and password (api.auth.service._reenroll). The audit event names the code, whose
    # row records who issued it.
    code_id = uuid.uuid4()
    await authorize_patient(session, caller, patient_id, "enrollment_code.create", allow=MANAGE_PATIENT,
                            resource_type="enrollment_code", resource_id=code_id)
    now = utcnow()
    # A new code supersedes any earlier unused one: only the latest printout works.
    await session.exec(
        update(EnrollmentCode)
        .where(EnrollmentCode.patient_id == patient_id, EnrollmentCode.used_at.is_(None), EnrollmentCode.expires_at > now)
        .values(expires_at=now)
    )
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    expires_at = now + dt.timedelta(hours=settings.enrollment_code_hours)
    session.add(EnrollmentCode(id=code_id, patient_id=patient_id, code_hash=digest(raw), created_by=caller.user_id,
                               expires_at=expires_at))
    await session.commit()
    return EnrollmentCodePublic(code=format_code(raw), expires_at=expires_at)
