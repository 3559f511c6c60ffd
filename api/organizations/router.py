from fastapi import APIRouter

from api.deps import AdminCaller, SessionDep, StaffCaller
from api.errors import problem_responses
from api.organizations import service
from api.organizations.schemas import OrganizationSettings, OrganizationSettingsUpdate
from api.routing import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1/organization", tags=["organization"])


@router.get("/settings", response_model=OrganizationSettings, responses=problem_responses(401, 403))
async def read_settings(caller: StaffCaller, session: SessionDep) -> OrganizationSettings:
    """The caller's organization's settings (admins and clinicians)."""
    return await service.read_settings(session, caller)


@router.patch("/settings", response_model=OrganizationSettings, responses=problem_responses(401, 403, 413, 422))
async def update_settings(
    body: OrganizationSettingsUpdate, caller: AdminCaller, session: SessionDep
) -> OrganizationSettings:
    """Change the default pre-dose blood-pressure hold thresholds and the dose ceilings (admins). Applies to later
    session edits and signatures; signed sessions keep the warnings they were signed with. `require_staff_mfa`:
    staff without two-factor sign-in then reach only /v1/me… (403 `mfa_enrollment_required`); changing it ends
    the staff's current access tokens, and their next refresh follows the new rule."""
    return await service.update_settings(session, caller, body)
