"""Reading and changing the caller's organization's settings (blood-pressure thresholds and dose ceilings)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.errors import ValidationFailed
from api.organizations.schemas import OrganizationSettings, OrganizationSettingsUpdate
from api.security.tokens import Caller
from models.organizations import Organization


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
    for name, value in sent.items():
        setattr(organization, name, value)
    session.add(organization)
    audit.record(session, caller, "organization.settings_update", resource_type="organization",
                 resource_id=organization.id)
    await session.commit()
    return present(organization)
