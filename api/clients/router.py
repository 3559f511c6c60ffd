import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from api.clients import service
from api.clients.schemas import (
    ApiClientCreate,
    ApiClientCreated,
    ApiClientPage,
    ApiClientPublic,
    TokenAnswer,
    TokenRequest,
)
from api.deps import AdminCaller, SessionDep, SettingsDep
from api.errors import OAuthErrorBody, problem_responses
from api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery
from api.routing import CheckedRoute

router = APIRouter(route_class=CheckedRoute, prefix="/v1/api-clients", tags=["clients"])


@router.post("", response_model=ApiClientCreated, status_code=status.HTTP_201_CREATED,
             responses=problem_responses(401, 403, 422))
async def create_api_client(body: ApiClientCreate, caller: AdminCaller, session: SessionDep) -> ApiClientCreated:
    """Register an integration of the caller's organization. The answer's client_secret is shown this once (only
    its hash is kept), so this POST takes no Idempotency-Key: a replay could not show it again."""
    return await service.create(session, caller, body)


@router.get("", response_model=ApiClientPage, responses=problem_responses(401, 403, 422))
async def list_api_clients(caller: AdminCaller, session: SessionDep, limit: LimitQuery = DEFAULT_LIMIT,
                           cursor: CursorQuery = None) -> ApiClientPage:
    """The organization's API clients, revoked ones included, newest first (never their secrets)."""
    items, next_cursor = await service.list_clients(session, caller, limit=limit, cursor=cursor)
    return ApiClientPage(items=items, next_cursor=next_cursor)


@router.get("/{client_id}", response_model=ApiClientPublic, responses=problem_responses(401, 403, 404, 422))
async def read_api_client(client_id: uuid.UUID, caller: AdminCaller, session: SessionDep) -> ApiClientPublic:
    return await service.read(session, caller, client_id)


@router.delete("/{client_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(401, 403, 404, 422))
async def revoke_api_client(client_id: uuid.UUID, caller: AdminCaller, session: SessionDep) -> None:
    """Revoke: the client gets no more tokens, and every server process refuses its tokens within a second.
    Repeating it is harmless (204)."""
    await service.revoke(session, caller, client_id)


token_router = APIRouter(route_class=CheckedRoute, prefix="/v1/auth", tags=["auth"])

_OAUTH_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthErrorBody"}}}
_TOKEN_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/TokenRequest"}}},
    },
    "security": [{"HTTPBasic": []}, {}],
}


@token_router.post(
    "/token", response_model=TokenAnswer, openapi_extra=_TOKEN_OPENAPI,
    responses={
        400: {"model": OAuthErrorBody, "content": _OAUTH_ERROR,
              "description": "RFC 6749 5.2: invalid_request, unsupported_grant_type or invalid_scope"},
        401: {"model": OAuthErrorBody, "content": _OAUTH_ERROR,
              "description": "invalid_client (with WWW-Authenticate: Basic when HTTP Basic was used)"},
        429: {"model": OAuthErrorBody, "content": _OAUTH_ERROR,
              "description": "temporarily_unavailable: too many failed authentications of this client (Retry-After)"},
    },
)
async def token(request: Request, session: SessionDep, settings: SettingsDep) -> JSONResponse:
    """OAuth 2.0 client-credentials grant (RFC 6749 section 4.4) for API clients: a form-encoded body with
    grant_type=client_credentials, the client's credentials (HTTP Basic or client_id and client_secret) and
    optionally a scope. Errors are RFC 6749 JSON, not problem+json. No refresh token: ask again when it expires."""
    parsed = service.token_request(request.headers, await request.body())
    answer = await service.issue_token(session, settings, parsed)
    # RFC 6749 5.1: Cache-Control: no-store (api.middleware adds it to every API answer) and Pragma: no-cache.
    return JSONResponse(answer.model_dump(), headers={"Pragma": "no-cache"})


# Referenced by the token route's OpenAPI request body (components are added in api.app).
OPENAPI_SCHEMAS = {"TokenRequest": TokenRequest, "OAuthErrorBody": OAuthErrorBody}
