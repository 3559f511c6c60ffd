"""Access tokens (short-lived JWTs) and opaque refresh/enrollment secrets.

Access tokens: HS256 only (explicit allow-list), `typ: at+jwt` header checked after verification (PyJWT does not),
`exp`, `iat`, `iss`, `aud`, `sub` required. Refresh tokens are random opaque strings stored as SHA-256, so one can
never be mistaken for the other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

from api.settings import Settings
from models.base import utcnow
from models.users import Role

ALGORITHM = "HS256"
ACCESS_TOKEN_TYPE = "at+jwt"
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as asserted by a verified access token."""

    user_id: uuid.UUID
    organization_id: uuid.UUID
    role: Role
    patient_id: uuid.UUID | None = None
    # The login session (refresh-token family) the token was issued in, and when (seconds since the epoch, to the
    # millisecond): what api/security/revocation.py checks.
    session_id: uuid.UUID | None = None
    issued_at: float = 0.0
    # False only for staff whose organization requires two-factor sign-in and whose login session has not proved
    # one: such a token reaches /v1/me… only (api/deps.py). The `mfa` claim; absent (patients, older tokens): True.
    mfa: bool = True
    # An API client's granted scopes (its `user_id` is then the client's id, its role `api_client`); empty for users.
    scopes: frozenset[str] = frozenset()

    @property
    def is_client(self) -> bool:
        return self.role == Role.api_client

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    @property
    def is_clinician(self) -> bool:
        return self.role == Role.clinician

    @property
    def is_patient(self) -> bool:
        return self.role == Role.patient


class InvalidToken(Exception):
    pass


def issue_access_token(
    settings: Settings, caller: Caller, *, session_id: uuid.UUID | None = None, now: dt.datetime | None = None
) -> tuple[str, int]:
    now = now or utcnow()
    lifetime = settings.access_token_minutes * 60
    claims = {
        "sub": str(caller.user_id),
        "org": str(caller.organization_id),
        "role": caller.role.value,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        # A NumericDate may have a fraction (RFC 7519 section 2): milliseconds, so that a revocation ends exactly the
        # tokens issued before it.
        "iat": round(now.timestamp(), 3),
        "exp": int(now.timestamp()) + lifetime,
        "jti": uuid.uuid4().hex,
    }
    if caller.patient_id is not None:
        claims["pid"] = str(caller.patient_id)
    if session_id is not None:
        claims["sid"] = str(session_id)
    if caller.role in (Role.admin, Role.clinician):
        claims["mfa"] = caller.mfa
    if caller.is_client:
        claims["scope"] = " ".join(sorted(caller.scopes))  # RFC 8693 section 4.2: space-delimited
    token = jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM, headers={"typ": ACCESS_TOKEN_TYPE})
    return token, lifetime


# Verified tokens, so that a phone or dashboard presenting the same token again skips the HMAC and JSON work (a
# tenth of a score post's CPU). Keyed by everything verification depends on; an entry is used only until the
# token's own `exp`. Bounded: the oldest entry goes first.
_VERIFIED_MAX = 10_000
_verified: dict[tuple[str, str, str, str], tuple[Caller, int]] = {}


def decode_access_token(settings: Settings, token: str) -> Caller:
    key = (settings.secret_key, settings.jwt_audience, settings.jwt_issuer, token)
    hit = _verified.get(key)
    if hit is not None and hit[1] > time.time():
        return hit[0]
    caller, expires = _verify(settings, token)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.pop(next(iter(_verified)), None)
    _verified[key] = (caller, expires)
    return caller


def _verify(settings: Settings, token: str) -> tuple[Caller, int]:
    try:
        decoded = jwt.decode_complete(
            token,
            settings.secret_key,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": _REQUIRED_CLAIMS},
        )
        if decoded["header"].get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidToken("not an access token")
        claims = decoded["payload"]
        pid, sid, scope = claims.get("pid"), claims.get("sid"), claims.get("scope")
        role = Role(claims["role"])
        if role == Role.api_client and not isinstance(scope, str):
            raise InvalidToken("client token without scope")
        caller = Caller(
            user_id=uuid.UUID(claims["sub"]),
            organization_id=uuid.UUID(claims["org"]),
            role=role,
            patient_id=uuid.UUID(pid) if pid else None,
            session_id=uuid.UUID(sid) if sid else None,
            issued_at=float(claims["iat"]),
            mfa=claims.get("mfa", True) is not False,
            scopes=frozenset(scope.split()) if role == Role.api_client else frozenset(),
        )
        return caller, int(claims["exp"])
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
