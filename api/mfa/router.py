from fastapi import APIRouter, status

from api.deps import NowDep, SessionDep, SettingsDep, StaffCaller
from api.errors import problem_responses
from api.mfa import service
from api.mfa.schemas import OtpCode, RecoveryCodes, TotpEnrollment
from api.routing import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1/me/mfa", tags=["mfa"])


@router.post("/totp", response_model=TotpEnrollment, responses=problem_responses(401, 403, 409))
async def start_totp(caller: StaffCaller, session: SessionDep, settings: SettingsDep, now: NowDep) -> TotpEnrollment:
    """Begin enrolling an authenticator app (staff): the secret and its otpauth:// URI, pending until confirmed.
    Starting again replaces a pending secret; 409 `mfa_already_enabled` once confirmed."""
    return await service.start(session, settings, caller, now)


@router.post("/totp/confirm", response_model=RecoveryCodes, responses=problem_responses(401, 403, 409, 422))
async def confirm_totp(
    body: OtpCode, caller: StaffCaller, session: SessionDep, settings: SettingsDep, now: NowDep
) -> RecoveryCodes:
    """Confirm the pending authenticator with its current code: two-factor sign-in is on from now, and the answer
    holds ten single-use recovery codes, shown this once. Wrong code: 422 `invalid_otp`."""
    return await service.confirm(session, settings, caller, body.code, now)


@router.delete("/totp", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 403, 409, 422, 429))
async def remove_totp(body: OtpCode, caller: StaffCaller, session: SessionDep, settings: SettingsDep, now: NowDep) -> None:
    """Switch two-factor sign-in off with a current code or a recovery code (checked under the login lockout)."""
    await service.remove(session, settings, caller, body.code, now)
