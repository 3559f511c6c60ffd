"""API clients: creation (the secret shown once), listing, revocation, and the OAuth client-credentials grant.

Revoking a client refuses its access tokens on every server process within REVOCATION_POLL_SECONDS
(api/security/revocation.py) and ends its token grants at once. The grant and the revocation serialise on the
client's row, so no token minted concurrently with a revocation outlives it (see `revoke` and `issue_token`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus

from sqlalchemy import CursorResult, delete, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from api.audit import service as audit
from api.auth.service import claim_throttled_attempt
from api.clients.schemas import ApiClientCreate, ApiClientCreated, ApiClientPublic, TokenAnswer
from api.errors import NotFound, OAuthError
from api.pagination import SortKey, keyset, page_of
from api.security import revocation
from api.security.revocation import Subject
from api.security.scopes import Scope, parse_scope, scope_string
from api.security.tokens import Caller, digest, issue_access_token
from api.settings import Settings
from models.api_clients import ApiClient
from models.base import utcnow
from models.users import LoginThrottle, Role

CLIENT_ID_PREFIX = "ctc_"
SECRET_PREFIX = "cts_"  # recognisable by secret scanners
SECRET_BYTES = 32  # 256 bits: no dictionary to try, so a fast hash (SHA-256) is enough
NOT_FOUND = "API client not found"
NEWEST_FIRST: list[SortKey] = [(ApiClient.created_at, "desc"), (ApiClient.id, "desc")]
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 20
MAX_CREDENTIAL_LENGTH = 256

# Compared against when the client_id is unknown, so an unknown client costs the same as a wrong secret.
_NO_SECRET_HASH = digest(secrets.token_urlsafe(SECRET_BYTES))


def public(client: ApiClient) -> ApiClientPublic:
    return ApiClientPublic.model_validate(client, from_attributes=True)


async def create(session: AsyncSession, caller: Caller, body: ApiClientCreate) -> ApiClientCreated:
    secret = SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    client = ApiClient(organization_id=caller.organization_id, client_id=CLIENT_ID_PREFIX + secrets.token_hex(12),
                       secret_hash=digest(secret), name=body.name, scopes=[str(s) for s in body.scopes],
                       created_by=caller.user_id)
    session.add(client)
    audit.record(session, caller, "api_client.create", resource_type="api_client", resource_id=client.id)
    await session.commit()
    return ApiClientCreated(**public(client).model_dump(), client_secret=secret)


async def _own(session: AsyncSession, caller: Caller, client_id: uuid.UUID) -> ApiClient:
    """A client of the caller's organization; any other (or none) is the same 404."""
    client = (await session.exec(select(ApiClient).where(
        ApiClient.id == client_id, ApiClient.organization_id == caller.organization_id))).scalar_one_or_none()
    if client is None:
        raise NotFound(NOT_FOUND)
    return client


async def read(session: AsyncSession, caller: Caller, client_id: uuid.UUID) -> ApiClientPublic:
    answer = public(await _own(session, caller, client_id))
    audit.record(session, caller, "api_client.read", resource_type="api_client", resource_id=client_id)
    await session.commit()
    return answer


async def list_clients(
    session: AsyncSession, caller: Caller, *, limit: int, cursor: str | None
) -> tuple[list[ApiClientPublic], str | None]:
    stmt = select(ApiClient).where(ApiClient.organization_id == caller.organization_id)
    rows = (await session.exec(keyset(stmt, NEWEST_FIRST, limit=limit, cursor=cursor))).scalars().all()
    clients, next_cursor = page_of(rows, NEWEST_FIRST, limit=limit)
    items = [public(client) for client in clients]
    audit.record(session, caller, "api_client.list", resource_type="api_client")
    await session.commit()
    return items, next_cursor


async def revoke(session: AsyncSession, caller: Caller, client_id: uuid.UUID) -> None:
    """Idempotent. The conditional update takes the client's row lock first (waiting for a token grant in flight,
    which takes it too); the revocation's instant is read only after, so every token granted before it was issued
    earlier and is refused."""
    await _own(session, caller, client_id)
    result: CursorResult = await session.exec(
        update(ApiClient).where(ApiClient.id == client_id, ApiClient.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_by=caller.user_id))
    if result.rowcount == 1:
        revocation.revoke(session, Subject.principal, client_id, "client_revoked", now=utcnow())
        audit.record(session, caller, "api_client.revoke", resource_type="api_client", resource_id=client_id)
    await session.commit()


# --- the client-credentials grant (RFC 6749 section 4.4) -----------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    client_id: str
    client_secret: str
    scope: str | None
    basic: bool  # credentials came by HTTP Basic: a 401 then carries a Basic challenge


def _invalid_request(description: str) -> OAuthError:
    return OAuthError(400, "invalid_request", description)


def _invalid_client(basic: bool, description: str = "Client authentication failed") -> OAuthError:
    headers = {"WWW-Authenticate": 'Basic realm="calmtrack"'} if basic else None
    return OAuthError(401, "invalid_client", description, headers=headers)


def parse_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The form body under RFC 6749 section 3.2: UTF-8 `application/x-www-form-urlencoded`, no parameter twice,
    parameters without a value treated as omitted."""
    media_type, _, parameters = (content_type or "").partition(";")
    if media_type.strip().lower() != FORM:
        raise _invalid_request(f"The request body must be {FORM}")
    charset = next((p.split("=", 1)[1].strip().strip('"').lower() for p in parameters.split(";")
                    if p.strip().lower().startswith("charset=")), "utf-8")
    if charset not in ("utf-8", "utf8"):
        raise _invalid_request("The form must be UTF-8")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                          max_num_fields=MAX_FORM_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise _invalid_request("The form body is malformed") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise _invalid_request(f"Parameter {name!r} is repeated")
        form[name] = value
    return {name: value for name, value in form.items() if value != ""}


def _basic_credentials(authorization: str) -> tuple[str, str]:
    """HTTP Basic with the client id and secret form-encoded first (RFC 6749 section 2.3.1)."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise _invalid_client(False, "Unsupported client authentication: use HTTP Basic or the form body")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_client(True, "Malformed HTTP Basic credentials") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise _invalid_client(True, "Malformed HTTP Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def token_request(headers: Mapping[str, str], body: bytes) -> TokenRequest:
    form = parse_form(headers.get("content-type"), body)
    grant_type = form.get("grant_type")
    if grant_type is None:
        raise _invalid_request("grant_type is required")
    if grant_type != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type", "Only the client_credentials grant is supported")
    authorization = headers.get("authorization")
    in_body = "client_id" in form or "client_secret" in form
    if authorization is not None:
        if in_body:
            # RFC 6749 section 2.3: one authentication method per request.
            raise _invalid_request("Send the client credentials by HTTP Basic or in the body, not both")
        client_id, secret = _basic_credentials(authorization)
        basic = True
    else:
        client_id, secret, basic = form.get("client_id", ""), form.get("client_secret", ""), False
    if not client_id or not secret:
        raise _invalid_client(basic, "Client authentication required: client_id and client_secret")
    if len(client_id) > MAX_CREDENTIAL_LENGTH or len(secret) > MAX_CREDENTIAL_LENGTH:
        raise _invalid_client(basic)
    return TokenRequest(client_id, secret, form.get("scope"), basic)


def _throttle_key(client_id: str) -> str:
    return digest("client:" + client_id)


async def issue_token(session: AsyncSession, settings: Settings, request: TokenRequest) -> TokenAnswer:
    """Authenticates the client under the same lockout as logins (LOGIN_MAX_FAILURES failures lock the client_id,
    doubling), then grants the requested subset of its scopes (all of them when none is asked for)."""
    now = utcnow()
    key = _throttle_key(request.client_id)
    throttle = await session.get(LoginThrottle, key)
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > now:
        retry_after = max(1, math.ceil((throttle.locked_until - now).total_seconds()))
        await session.rollback()
        raise OAuthError(429, "temporarily_unavailable",
                         f"Too many failed authentications of this client; retry in {retry_after} s",
                         headers={"Retry-After": str(retry_after)})

    client = (await session.exec(
        select(ApiClient).where(ApiClient.client_id == request.client_id))).scalar_one_or_none()
    stored_hash = client.secret_hash if client is not None else _NO_SECRET_HASH
    valid = hmac.compare_digest(stored_hash, digest(request.client_secret))
    if not valid or client is None or client.revoked_at is not None:
        await _refuse(session, settings, key, client, now)
        raise _invalid_client(request.basic)

    granted = frozenset(Scope(s) for s in client.scopes)
    if request.scope is not None:
        asked = parse_scope(request.scope)
        if asked is None or not asked or not asked <= granted:
            await session.rollback()
            raise OAuthError(400, "invalid_scope", "The scope is unknown or exceeds the scopes granted to this client")
        granted = asked

    # Serialises with `revoke` on the client's row: after a revocation commits, no further token is granted.
    claimed: CursorResult = await session.exec(
        update(ApiClient).where(ApiClient.id == client.id, ApiClient.revoked_at.is_(None)).values(last_token_at=now))
    if claimed.rowcount != 1:
        await _refuse(session, settings, key, client, now)
        raise _invalid_client(request.basic)
    if throttle is not None:
        await session.exec(delete(LoginThrottle).where(LoginThrottle.key == key))
    caller = Caller(user_id=client.id, organization_id=client.organization_id, role=Role.api_client,
                    scopes=frozenset(str(s) for s in granted))
    access_token, expires_in = issue_access_token(settings, caller, now=utcnow())
    audit.record(session, caller, "auth.token", resource_type="api_client", resource_id=client.id)
    await session.commit()
    return TokenAnswer(access_token=access_token, expires_in=expires_in, scope=scope_string(granted))


async def _refuse(
    session: AsyncSession, settings: Settings, key: str, client: ApiClient | None, now
) -> None:
    """Counts a failed client authentication toward the lockout and audits it (committed: the request fails)."""
    organization_id, client_row_id = (client.organization_id, client.id) if client else (None, None)
    await session.rollback()
    await claim_throttled_attempt(session, settings, key, now)
    audit.record(session, None, "auth.client_failed", resource_type="api_client", resource_id=client_row_id,
                 organization_id=organization_id, outcome=audit.DENIED)
    await session.commit()
