from fastapi import APIRouter, status

from api.auth import service
from api.auth.schemas import EnrollRequest, LoginRequest, Me, PasswordChange, RefreshRequest, TokenPair
from api.deps import NowDep, SessionDep, SettingsDep, UserCaller
from api.errors import problem_responses
from api.routing import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1", tags=["auth"])


@router.post("/auth/login", response_model=TokenPair, responses=problem_responses(401, 422, 429))
async def login(body: LoginRequest, session: SessionDep, settings: SettingsDep, now: NowDep) -> TokenPair:
    """Exchange email and password (and `otp`, for staff with two-factor sign-in) for an access token and a
    rotating refresh token. A right password without the `otp` it needs answers 401 `mfa_required`."""
    return await service.login(session, settings, body.email, body.password, body.otp, now)


@router.post("/auth/refresh", response_model=TokenPair, responses=problem_responses(401, 422))
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenPair:
    """Rotate a refresh token. Presenting one that was already rotated revokes its whole family."""
    return await service.refresh(session, settings, body.refresh_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(422))
async def logout(body: RefreshRequest, session: SessionDep) -> None:
    """End the session the refresh token belongs to (all tokens of its family)."""
    await service.logout(session, body.refresh_token)


@router.post(
    "/auth/enroll", response_model=TokenPair, status_code=status.HTTP_201_CREATED, responses=problem_responses(409, 422)
)
async def enroll(body: EnrollRequest, session: SessionDep, settings: SettingsDep) -> TokenPair:
    """Create a patient's login from a single-use enrollment code issued by their clinic."""
    return await service.enroll(session, settings, body)


@router.get("/me", response_model=Me, responses=problem_responses(401, 403))
async def read_me(caller: UserCaller, session: SessionDep) -> Me:
    return await service.me(session, caller)


@router.post("/me/password", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 422, 429))
async def change_password(body: PasswordChange, caller: UserCaller, session: SessionDep, settings: SettingsDep) -> None:
    """Change the caller's password. The current one is checked under the login lockout (wrong: 422 on
    `current_password`, code `invalid_current_password`); every other login session of the caller ends, this one
    continues."""
    await service.change_password(session, settings, caller, body.current_password, body.new_password)
