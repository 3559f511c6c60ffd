"""The single authorisation path for patient-scoped data (the contract's "Roles and who sees what").

A patient is visible to (a) that patient, (b) clinicians on the patient's care team, (c) admins of the patient's
organization, (d) the organization's API clients, which may then act only as far as their token's scopes admit
(`Permission.scopes`); nothing crosses organizations. Every patient-scoped query filters through
`visible_patients`, and every route that takes a patient id loads it through `authorize_patient`: what the caller
may not see does not exist (404), and the attempt is audited as denied.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, Uuid, and_, bindparam, exists, false, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.errors import Forbidden, InsufficientScope, NotFound
from api.security.scopes import Scope
from api.security.tokens import Caller
from models.patients import CareTeamMember, CareTeamRole, Patient
from models.users import Role

# The account roles (users). API clients are admitted by scopes instead, never by these.
ALL_ROLES: frozenset[Role] = frozenset({Role.admin, Role.clinician, Role.patient})
STAFF: frozenset[Role] = frozenset({Role.admin, Role.clinician})
ALL_TEAM_ROLES: frozenset[CareTeamRole] = frozenset(CareTeamRole)


@dataclass(frozen=True, slots=True)
class Permission:
    """Who may perform an act on a patient they can see: account roles and, for clinicians, care-team roles.

    The contract's "Users, patients, care teams": a prescriber may do everything clinical; a monitor drafts and
    edits sessions, records in-clinic scores and acknowledges alerts but writes no plan; a therapist reads, records
    in-clinic scores and acknowledges alerts. docs/access.md has the whole table.

    An API client may perform the act when its token holds every one of `scopes`; with no scopes, never.
    """

    roles: frozenset[Role]
    team_roles: frozenset[CareTeamRole] = ALL_TEAM_ROLES
    description: str = ""
    scopes: frozenset[Scope] = frozenset()

    def allows(self, role: Role, team_role: CareTeamRole | None) -> bool:
        if role not in self.roles:
            return False
        return role != Role.clinician or not self.restricts_team or team_role in self.team_roles

    def missing_scopes(self, caller: Caller) -> frozenset[Scope] | None:
        """For an API client: the scopes its token lacks for this act (empty: admitted), or None when no scope
        admits clients to it at all."""
        if not self.scopes:
            return None
        return frozenset(scope for scope in self.scopes if scope not in caller.scopes)

    @property
    def restricts_team(self) -> bool:
        return Role.clinician in self.roles and self.team_roles != ALL_TEAM_ROLES


def _permission(roles: set[Role], team_roles: set[CareTeamRole] = set(ALL_TEAM_ROLES), description: str = "",
                scopes: set[Scope] = set()):
    return Permission(frozenset(roles), frozenset(team_roles), description, frozenset(scopes))


# Reading, per kind of record: whoever sees the patient, and API clients holding the kind's scope. READ alone
# (progress reports) admits no client.
READ = _permission(set(ALL_ROLES), description="read")
READ_PATIENT = _permission(set(ALL_ROLES), description="read", scopes={Scope.patients_read})
READ_PLANS = _permission(set(ALL_ROLES), description="read the plans of", scopes={Scope.plans_read})
READ_SESSIONS = _permission(set(ALL_ROLES), description="read the sessions of", scopes={Scope.sessions_read})
READ_SCORES = _permission(set(ALL_ROLES), description="read the scores of", scopes={Scope.scores_read})
# The FHIR export holds the patient, plans, sessions and scores: a client needs the read scope of each.
EXPORT_RECORD = _permission(set(ALL_ROLES), description="export the record of",
                            scopes={Scope.patients_read, Scope.plans_read, Scope.sessions_read, Scope.scores_read})
READ_ALERTS = _permission(set(STAFF), description="read the alerts of", scopes={Scope.alerts_read})
# Plan revision history: staff-only records.
READ_PLAN_REVISIONS = _permission(set(STAFF), description="read staff-only records of", scopes={Scope.plans_read})
# Demographics and enrollment codes: any care-team clinician, and admins.
MANAGE_PATIENT = _permission(set(STAFF), description="manage")
# The patient's own time zone: the patient too.
OWN_TIMEZONE = _permission(set(ALL_ROLES), description="change the time zone of")
# Who is on the team, in which role: admins and prescribers (a monitor or therapist could otherwise promote
# themselves).
MANAGE_CARE_TEAM = _permission(set(STAFF), {CareTeamRole.prescriber}, "change the care team of")
WRITE_PLANS = _permission({Role.clinician}, {CareTeamRole.prescriber}, "write treatment plans for")
WRITE_SESSIONS = _permission({Role.clinician}, {CareTeamRole.prescriber, CareTeamRole.monitor},
                             "write dosing sessions for")
ENTER_SCORES = _permission({Role.patient, Role.clinician}, description="enter scores for",
                           scopes={Scope.scores_write})
# Retracting: a patient their reports, the care team in-clinic scores; no API client (not in its scopes' map).
RETRACT_SCORES = _permission({Role.patient, Role.clinician}, description="retract scores of")
ACKNOWLEDGE_ALERTS = _permission({Role.clinician}, description="acknowledge alerts of")
OWN_RECORDS_ONLY = _permission({Role.patient}, description="act as")
# Who may supervise (and so sign) a dosing session.
SUPERVISING_TEAM_ROLES = WRITE_SESSIONS.team_roles


def on_care_team(user_id: uuid.UUID, patient_id: ColumnElement) -> ColumnElement[bool]:
    return exists().where(CareTeamMember.patient_id == patient_id, CareTeamMember.user_id == user_id)


def visible_patients(caller: Caller) -> ColumnElement[bool]:
    """WHERE clause on `Patient` selecting exactly the patients the caller may see."""
    same_org = Patient.organization_id == caller.organization_id
    if caller.role in (Role.admin, Role.api_client):
        return same_org
    if caller.role == Role.clinician:
        return and_(same_org, on_care_team(caller.user_id, Patient.id))
    if caller.role == Role.patient and caller.patient_id is not None:
        return and_(same_org, Patient.id == caller.patient_id)
    return false()


def bound_caller(role: Role) -> Caller:
    """A caller of `role` whose ids are bound parameters: a statement built from it (with `visible_patients`) once
    per role serves every caller of that role, given `caller_parameters(caller)`. Composing a statement costs more
    CPU than PostgreSQL spends running these."""
    return Caller(user_id=bindparam("caller_user_id", type_=Uuid), role=role,
                  organization_id=bindparam("caller_organization_id", type_=Uuid),
                  patient_id=bindparam("caller_patient_id", type_=Uuid))  # type: ignore[arg-type]


def caller_parameters(caller: Caller) -> dict[str, Any]:
    """The values of `bound_caller`'s parameters for this caller."""
    return {"caller_user_id": caller.user_id, "caller_organization_id": caller.organization_id,
            "caller_patient_id": caller.patient_id}


@functools.cache
def _visible_patient(role: Role, with_team_role: bool) -> Select:
    """The patient if a caller of `role` may see it (and, when asked, the caller's care-team role), built once per
    role with the caller's ids as parameters: composing it on every request cost more than running it. The
    condition is `visible_patients` itself."""
    caller = bound_caller(role)
    stmt = select(Patient).where(Patient.id == bindparam("patient_id", type_=Uuid), visible_patients(caller))
    if not with_team_role:
        return stmt
    return stmt.add_columns(
        select(CareTeamMember.role)
        .where(CareTeamMember.patient_id == Patient.id, CareTeamMember.user_id == caller.user_id)
        .scalar_subquery()
    )


async def _deny_unseen(
    session: AsyncSession, caller: Caller, action: str, *, resource_type: str, resource_id: object,
    patient_id: uuid.UUID | None,
) -> None:
    """Audits an attempt on a patient the caller may not see (or that does not exist). The caller's own log names
    the patient only when it is of the caller's organization (whose admins may see it anyway); an attempt on
    another organization's patient shows in that organization's log instead."""
    owner = None
    if patient_id is not None:
        owner = (await session.exec(
            select(Patient.organization_id).where(Patient.id == patient_id))).scalar_one_or_none()
    await audit.record_denied(session, caller, action, resource_type=resource_type, resource_id=resource_id,
                              patient_id=patient_id if owner is not None else None, owner_organization_id=owner)


async def authorize_patient(
    session: AsyncSession,
    caller: Caller,
    patient_id: uuid.UUID | None,
    action: str,
    *,
    allow: Permission = READ,
    resource_type: str = "patient",
    resource_id: object | None = None,
) -> Patient:
    """Loads a patient the caller may see and act on, recording the access in the audit log.

    Visibility is checked before the permission, so a caller learns nothing about a patient it may not see (404)
    and only gets 403 for a patient it can see but may not act on in this way. An API client sees its whole
    organization and acts as far as `allow.scopes` admit (403 `insufficient_scope` naming what its token lacks, or
    403 when no scope admits clients to the act). The audit event joins the request's transaction; a denied attempt
    is committed at once.
    """
    resource_id = resource_id or patient_id
    with_team_role = allow.restricts_team and caller.role == Role.clinician
    params = {"patient_id": patient_id, **caller_parameters(caller)}
    found = (await session.exec(_visible_patient(caller.role, with_team_role), params=params)).first()
    patient, team_role = (found[0], found[1] if with_team_role else None) if found else (None, None)
    if patient is None:
        await _deny_unseen(session, caller, action, resource_type=resource_type, resource_id=resource_id,
                           patient_id=patient_id)
        raise NotFound("Patient not found")
    if caller.is_client:
        missing = allow.missing_scopes(caller)
        if missing is None or missing:
            await audit.record_denied(session, caller, action, resource_type=resource_type, resource_id=resource_id,
                                      patient_id=patient_id)
            if missing is None:
                raise Forbidden(f"API clients may not {allow.description or 'do this for'} a patient ({action})")
            raise InsufficientScope(missing)
    elif not allow.allows(caller.role, team_role and CareTeamRole(team_role)):
        await audit.record_denied(session, caller, action, resource_type=resource_type, resource_id=resource_id,
                                  patient_id=patient_id)
        who = f"a {team_role} on the care team" if team_role else f"the {caller.role.value} role"
        raise Forbidden(f"As {who} you may not {allow.description or 'do this for'} this patient ({action})")
    audit.record(session, caller, action, resource_type=resource_type, resource_id=resource_id,
                 patient_id=patient_id)
    return patient


async def authorize_patient_of(
    session: AsyncSession,
    caller: Caller,
    patient_id: uuid.UUID | None,
    action: str,
    *,
    allow: Permission = READ,
    resource_type: str,
    resource_id: object,
    not_found: str,
) -> Patient:
    """`authorize_patient` for routes addressed by a resource's own id (a plan, a session, a score).

    `patient_id` is the loaded resource's patient, or None when there is no such resource; read it before calling,
    since a denial rolls the session back and expires loaded objects. A resource that does not exist and one whose
    patient the caller may not see get the same 404 with the same detail, and both attempts are audited.
    """
    try:
        return await authorize_patient(session, caller, patient_id, action, allow=allow,
                                       resource_type=resource_type, resource_id=resource_id)
    except NotFound:
        raise NotFound(not_found) from None
