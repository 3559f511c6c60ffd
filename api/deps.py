"""Named dependency types: a route's signature says what it needs (`session: SessionDep, caller: StaffCaller`).

Dependencies are `async def` even where they do not await: FastAPI runs plain `def` dependencies in a thread
pool, a hop that costs more than the work itself on every request."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar, get_type_hints

from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Forbidden, InsufficientScope, InvalidAccessToken, MfaEnrollmentRequired, Unauthorized
from api.security.scopes import Scope
from api.security.tokens import Caller, InvalidToken, decode_access_token
from api.settings import Settings
from models.users import Role


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    # Writes commit explicitly in their service functions; anything left uncommitted is rolled back on close.
    async with request.app.state.sessions() as session:
        yield session


def sessions_of(request: Request) -> async_sessionmaker[AsyncSession]:
    """The app's session factory, for the hot routes whose fast path opens no ORM session at all (opening one costs
    more than their one statement). A function the route calls with its `request`, not a dependency: each
    dependency costs FastAPI work on every request, as much as the route's own statement builds (bench/README.md,
    2026-11-30)."""
    return request.app.state.sessions


async def get_now(request: Request) -> dt.datetime:
    """The current instant from the app's clock (`app.state.clock`): tests move it instead of sleeping."""
    return request.app.state.clock()


SettingsDep = Annotated[Settings, Depends(get_settings)]
NowDep = Annotated[dt.datetime, Depends(get_now)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]

class _Authenticated(HTTPBearer):
    """The caller of a route, from its bearer token: an `HTTPBearer` security scheme (so the OpenAPI document says
    which routes need a token) that authenticates as well, one dependency where a scheme and a check on it were two:
    every level of dependencies costs FastAPI measurable work on every request, and these run on all of them.
    `admits` decides whether an authenticated caller may use the route at all (403 otherwise)."""

    def __init__(self, admits: Callable[[Caller], None] | None = None) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer",
                         description="Access token from /v1/auth/login, /refresh or /enroll")
        self.admits = admits

    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise Unauthorized("An access token is required")
        try:
            caller = decode_access_token(request.app.state.settings, credentials.credentials)
        except InvalidToken:
            raise InvalidAccessToken("Invalid or expired access token") from None
        if await request.app.state.revocations.is_revoked(caller):
            raise InvalidAccessToken("This access token has been revoked (account deactivated or changed, or the "
                                     "session ended); sign in again")
        await request.app.state.rate_limiter.check("user", str(caller.user_id))
        # Staff of an organization that requires two-factor sign-in, in a session without it: one attribute test
        # here, the claim set when the token was issued (docs/accounts.md).
        if not caller.mfa:
            path = request.scope["path"]
            if path != "/v1/me" and not path.startswith("/v1/me/"):
                raise MfaEnrollmentRequired("Your organization requires two-factor sign-in: enrol an authenticator "
                                            "(POST /v1/me/mfa/totp), confirm it, then refresh or sign in again")
        if self.admits is not None:
            self.admits(caller)
        return caller


# Any valid token, an API client's included: for patient-scoped routes, whose gate is `api.authz.authorize_patient`
# (it admits a client only as far as the act's `Permission.scopes` say).
get_caller = _Authenticated()


def require_roles(*roles: Role, scope: Scope | None = None) -> _Authenticated:
    """Users of `roles`; API clients only when the route names the `scope` that admits them (403 without it,
    `insufficient_scope` when the token lacks it)."""
    allowed = frozenset(roles)

    def admits(caller: Caller) -> None:
        if caller.is_client:
            if scope is None:
                raise Forbidden("This operation is not available to API clients")
            if scope not in caller.scopes:
                raise InsufficientScope([scope])
        elif caller.role not in allowed:
            raise Forbidden(f"This operation is not available to the {caller.role.value} role")

    return _Authenticated(admits)


T = TypeVar("T")


def query_parameters(cls: type[T]) -> Callable[..., Any]:
    """A query-parameter class (a dataclass of `Query(...)` fields) as an `async` dependency, for
    `Annotated[ChartQuery, Depends(query_parameters(ChartQuery))]`. `Depends()` on the class itself would call it
    in a worker thread on every request. The signature carries the class's resolved type hints, because FastAPI
    resolves string annotations in the dependency's module, not the class's."""
    hints = get_type_hints(cls, include_extras=True)
    parameters = [parameter.replace(annotation=hints[parameter.name])
                  for parameter in inspect.signature(cls).parameters.values()]

    async def build(**values: Any) -> T:
        return cls(**values)

    build.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    build.__name__ = build.__qualname__ = cls.__name__
    return build


CallerDep = Annotated[Caller, Depends(get_caller)]
# Any user (admin, clinician or patient), never an API client: e.g. /v1/me.
UserCaller = Annotated[Caller, Depends(require_roles(Role.admin, Role.clinician, Role.patient))]
AdminCaller = Annotated[Caller, Depends(require_roles(Role.admin))]
StaffCaller = Annotated[Caller, Depends(require_roles(Role.admin, Role.clinician))]
PatientCaller = Annotated[Caller, Depends(require_roles(Role.patient))]
# Routes about no one patient that an API client may call with the named scope.
PatientListCaller = Annotated[Caller, Depends(require_roles(Role.admin, Role.clinician, scope=Scope.patients_read))]
AlertReader = Annotated[Caller, Depends(require_roles(Role.admin, Role.clinician, scope=Scope.alerts_read))]
ScoreExporter = Annotated[Caller, Depends(require_roles(Role.admin, scope=Scope.scores_read))]
