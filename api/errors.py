"""One error hierarchy, mapped to RFC 9457 problem responses in one place.

Domain code raises these; routes never build error responses by hand. Problem `type`s are URNs listed in
docs/errors.md.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.context import request_id_var

log = logging.getLogger("calmtrack.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:calmtrack:problem:"


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str | None = None


class Problem(BaseModel):
    """The RFC 9457 body of every error response (documented on every route)."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable and machine-readable: branch on this, not on title or detail")
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None
    retry_after: int | None = Field(
        default=None, description="Retryable problems: seconds until the same request may succeed (as Retry-After)")


def code_of(slug: str) -> str:
    """A problem's default `code`: its type's slug in snake_case, like every other code of the API."""
    return slug.replace("-", "_")


class ProblemError(Exception):
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"
    code: str | None = None  # None: code_of(slug)

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None
        self.code = code or type(self).code or code_of(self.slug)
        # A retryable problem says when (header and body alike, so batch entries can say it too).
        self.retry_after = max(1, retry_after) if retry_after is not None else None
        if self.retry_after is not None:
            self.headers["Retry-After"] = str(self.retry_after)

    def body(self) -> dict[str, Any]:
        """The problem document (without `instance`, which only a whole response has; batch entries use this)."""
        return problem_document(self.status, slug=self.slug, title=self.title, detail=self.detail, code=self.code,
                                errors=self.errors, retry_after=self.retry_after)


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Unauthorized"
    challenge = 'Bearer realm="calmtrack"'

    def __init__(self, detail: str = "Missing, invalid or expired access token", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("WWW-Authenticate", self.challenge)


class InvalidAccessToken(Unauthorized):
    """A bearer token was presented and refused (RFC 6750 3.1): the client should get a new one, not re-prompt."""

    code = "invalid_token"
    challenge = 'Bearer realm="calmtrack", error="invalid_token"'


class MfaRequired(Unauthorized):
    """The password was right, but the account has two-factor sign-in: send `otp` too (docs/accounts.md)."""

    slug, title = "mfa-required", "Two-factor code required"


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Forbidden"


class MfaEnrollmentRequired(Forbidden):
    """The organization requires two-factor sign-in of its staff and this login session has none: only /v1/me…
    answers until the caller enrols (and confirms) an authenticator."""

    slug, title = "mfa-enrollment-required", "Two-factor sign-in required"


class InsufficientScope(Forbidden):
    """An API client's token lacks the scope a route needs (RFC 6750 section 3.1): the challenge names it, so the
    client can ask for a token with it (or its admin can grant it)."""

    code = "insufficient_scope"

    def __init__(self, scopes: Iterable[str], detail: str | None = None, **kwargs: Any) -> None:
        needed = " ".join(sorted(scopes))
        super().__init__(detail or f"This API client's token lacks the scope this needs: {needed}", **kwargs)
        self.headers.setdefault("WWW-Authenticate",
                                f'Bearer realm="calmtrack", error="insufficient_scope", scope="{needed}"')


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PreconditionRequired(ProblemError):
    status, slug, title = 428, "precondition-required", "Precondition required"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(ProblemError):
    status, slug, title = 422, "validation-error", "Validation error"

    @classmethod
    def at(cls, loc: Sequence[str | int], msg: str) -> ValidationFailed:
        return cls(msg, errors=[{"loc": list(loc), "msg": msg}])

    @classmethod
    def of(cls, errors: Iterable[Mapping[str, Any]], *, within: Sequence[str | int] = ()) -> ValidationFailed:
        """From pydantic's error list, located `within` the request (e.g. ["body"]). Locations, messages and types
        only: the submitted values are never echoed back (they may be PHI, and they may be huge)."""
        errors = list(errors)
        cleaned = [{"loc": [*within, *e.get("loc", ())], "msg": e.get("msg", "invalid"), "type": e.get("type")}
                   for e in errors]
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in cleaned[:5])
        # Errors that time alone will cure (their ctx says when, e.g. recorded_in_future) make the problem retryable,
        # with their own code, but only when nothing else is wrong: a retry would otherwise fail again.
        waits = [(e.get("ctx") or {}).get("retry_after") for e in errors]
        types = {e.get("type") for e in errors}
        if errors and None not in waits and len(types) == 1:
            return cls(detail, errors=cleaned, code=types.pop(), retry_after=max(waits))
        return cls(detail, errors=cleaned)

    @classmethod
    def of_body(cls, error: ValidationError) -> ValidationFailed:
        """A body validated in a service rather than by FastAPI (e.g. a PATCH merged into the stored record)."""
        return cls.of(error.errors(), within=["body"])


class ServiceUnavailable(ProblemError):
    """Temporarily unable to answer: the client should retry after `Retry-After` seconds."""

    status, slug, title = 503, "service-unavailable", "Service unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5, **kwargs: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **kwargs)


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached (refused, reset, terminated, no connection free in time)."""

    slug, title = "database-unavailable", "Database unavailable"

    def __init__(self, detail: str = "The database is unreachable; retry after the number of seconds in Retry-After",
                 **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)


class RateLimited(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)


class OAuthError(Exception):
    """An error of the OAuth token endpoint, answered as RFC 6749 section 5.2 JSON (`{error, error_description}`)
    rather than problem+json: OAuth client libraries parse that shape."""

    def __init__(self, status: int, error: str, description: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description
        # Cache-Control: no-store is on every API answer already (api.middleware).
        self.headers = {"Pragma": "no-cache", **(headers or {})}


class OAuthErrorBody(BaseModel):
    """RFC 6749 section 5.2."""

    error: str = Field(description="invalid_request | invalid_client | invalid_grant | unauthorized_client | "
                                   "unsupported_grant_type | invalid_scope | temporarily_unavailable")
    error_description: str | None = None


def problem_document(
    status: int,
    *,
    slug: str,
    title: str,
    detail: str,
    code: str | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    retry_after: int | None = None,
) -> dict[str, Any]:
    """The one place a problem document (RFC 9457, plus our `code`, `request_id` and `retry_after`) is built."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code or code_of(slug),
        "request_id": request_id_var.get(),
    }
    if errors is not None:
        body["errors"] = list(errors)
    if retry_after is not None:
        body["retry_after"] = retry_after
    return body


def problem_response(
    status: int,
    *,
    slug: str,
    title: str,
    detail: str,
    request: Request | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
    code: str | None = None,
) -> JSONResponse:
    body = problem_document(status, slug=slug, title=title, detail=detail, code=code, errors=errors)
    if request is not None:
        body["instance"] = request.url.path
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def _http_slug(status: int) -> str:
    return {404: "not-found", 405: "method-not-allowed", 401: "unauthorized", 413: "payload-too-large"}.get(
        status, "http-" + str(status)
    )


def install_error_handlers(app: FastAPI) -> None:
    from api.db import DRIVER_ERRORS, database_unavailable  # api.db raises DatabaseUnavailable: import it late

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        if exc.status >= 500:
            # One line, no stack trace: an outage answers every request like this. Type names only (PHI).
            log.warning("%d %s (%s)", exc.status, exc.slug, _causes(exc))
        return JSONResponse({**exc.body(), "instance": request.url.path}, status_code=exc.status, headers=exc.headers,
                            media_type=PROBLEM_JSON)

    @app.exception_handler(OAuthError)
    async def _oauth(request: Request, exc: OAuthError) -> JSONResponse:
        return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await _problem(request, ValidationFailed.of(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        phrase = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else f"{phrase}: {request.url.path}"
        return problem_response(
            exc.status_code, slug=_http_slug(exc.status_code), title=phrase, detail=detail, request=request, headers=exc.headers
        )

    async def _driver_error(request: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):
            problem = DatabaseUnavailable()
            problem.__cause__ = exc  # logged by type name
            return await _problem(request, problem)
        return await _unexpected(request, exc)

    # Registered for the drivers' own base classes rather than left to the catch-all, so that the 503 is answered
    # inside the middleware stack (CORS headers included) like every other problem.
    for error_class in DRIVER_ERRORS:
        app.add_exception_handler(error_class, _driver_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Type and code locations only: exception messages can carry PHI (e.g. a database error quoting a value).
        where = "".join(traceback.format_tb(exc.__traceback__)[-5:])
        log.error("unhandled %s.%s\n%s", type(exc).__module__, type(exc).__qualname__, where)
        return problem_response(
            500, slug="internal-error", title="Internal server error",
            detail="An unexpected error occurred; quote the request id when reporting it.", request=request,
        )


def _causes(exc: BaseException) -> str:
    names = []
    cause: BaseException | None = exc
    while cause is not None and len(names) < 4:
        names.append(f"{type(cause).__module__}.{type(cause).__qualname__}")
        cause = cause.__cause__ or cause.__context__
    return " <- ".join(names)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries so every route documents the problems it can answer with."""
    return {
        status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": HTTPStatus(status).phrase}
        for status in statuses
    }
