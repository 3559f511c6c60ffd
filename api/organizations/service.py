"""Reading and changing the caller's organization's settings (blood-pressure thresholds, dose ceilings, and whether
staff must sign in with two factors)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.errors import ValidationFailed
from api.organizations.schemas import OrganizationSettings, OrganizationSettingsUpdate
from api.security import revocation
from api.security.revocation import Subject
from api.security.tokens import Caller
from models.base import utcnow
from models.organizations import Organization
from models.users import Role, User


_SETTINGS = tuple(OrganizationSettingsUpdate.model_fields)


def present(organization: Organization) -> OrganizationSettings:
    return OrganizationSettings(organization_id=organization.id, name=organization.name,
                                **{name: getattr(organization, name) for name in _SETTINGS})


async def _own(session: AsyncSession, caller: Caller) -> Organization:
    organization = await session.get(Organization, caller.organization_id)
    assert organization is not None  # a token is only issued to a user of an existing organization
    return organization


async def read_settings(session: AsyncSession, caller: Caller) -> OrganizationSettings:
    return present(await _own(session, caller))


async def update_settings(
    session: AsyncSession, caller: Caller, body: OrganizationSettingsUpdate
) -> OrganizationSettings:
    organization = await _own(session, caller)
    sent = body.model_dump(exclude_unset=True)
    systolic = sent.get("default_max_systolic", organization.default_max_systolic)
    diastolic = sent.get("default_max_diastolic", organization.default_max_diastolic)
    if diastolic >= systolic:
        field = "default_max_diastolic" if "default_max_diastolic" in sent else "default_max_systolic"
        raise ValidationFailed.at(["body", field], "default_max_diastolic must be below default_max_systolic")
    mfa_flipped = "require_staff_mfa" in sent and sent["require_staff_mfa"] != organization.require_staff_mfa
    for name, value in sent.items():
        setattr(organization, name, value)
    session.add(organization)
    audit.record(session, caller, "organization.settings_update", resource_type="organization",
                 resource_id=organization.id)
    if mfa_flipped:
        await _apply_mfa_policy(session, caller, organization)
    await session.commit()
    return present(organization)


async def _apply_mfa_policy(session: AsyncSession, caller: Caller, organization: Organization) -> None:
    """Staff tokens carry whether they satisfy the policy (`mfa`), so that checking it costs nothing per request:
    when the policy changes, every active staff member's access tokens are revoked (on every process within the
    polling interval) and the next refresh or login issues tokens under the new policy."""
    now = utcnow()
    staff = (await session.exec(select(User.id).where(
        User.organization_id == organization.id, User.role != Role.patient, User.is_active.is_(True)))).scalars().all()
    for user_id in staff:
        revocation.revoke(session, Subject.principal, user_id, "mfa_policy", now=now)
    action = "organization.require_staff_mfa_on" if organization.require_staff_mfa else \
        "organization.require_staff_mfa_off"
    audit.record(session, caller, action, resource_type="organization", resource_id=organization.id)
