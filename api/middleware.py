"""Pure-ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path).

- a request id on every response (`X-Request-ID`; a well-formed incoming one is kept) and in every log line;
- a body-size cap (413) enforced on Content-Length and on the bytes actually streamed, after decompression for
  `Content-Encoding: gzip` bodies (inflated here as they arrive, api/compression.py); a larger cap for the few routes
  listed in `body_limits` (the phone's batch);
- `Cache-Control: no-store` on API responses, which carry PHI;
- one access-log line per request naming the route template, never the raw path or query (they can hold PHI).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.compression import GzipBody, request_coding
from api.context import request_id_var
from api.errors import PayloadTooLarge, ProblemError, ValidationFailed, problem_response

access_log = logging.getLogger("calmtrack.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class _BodyRefused(Exception):
    def __init__(self, problem: ProblemError) -> None:
        super().__init__(problem.detail)
        self.problem = problem


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_limits: Mapping[tuple[str, str], int] = {}) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # (method, path) → its own body limit; exact paths, checked before routing.
        self.body_limits = dict(body_limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        refused: ProblemError | None = None  # the body was refused while the app read it
        no_store = scope["path"].startswith("/v1/")
        limit = self.body_limits.get((scope.get("method", ""), scope["path"]), self.max_body_bytes)
        received = 0
        inflater: GzipBody | None = None

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                try:
                    if inflater is not None:
                        body = inflater.feed(body)
                        if not message.get("more_body", False):
                            inflater.finish()
                        message = {**message, "body": body}
                    received += len(body)
                    if received > limit:
                        raise self._too_large_problem(limit)
                except ProblemError as problem:
                    refused = problem
                    raise _BodyRefused(problem) from None
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if refused is not None:
                # The framework turns an aborted body read into its own 400; the client gets our problem instead.
                if message["type"] == "http.response.start" and not response_started:
                    status, response_started = refused.status, True
                    await self._problem(refused, scope, receive, send, close=True)
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                if no_store:
                    headers.append((b"cache-control", b"no-store"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        try:
            if b"%00" in scope.get("query_string", b""):
                # PostgreSQL text cannot hold NUL: refuse it here once rather than in every query parameter.
                status = 422
                await self._problem(ValidationFailed("Query parameters must not contain NUL characters"),
                                    scope, receive, send)
                return
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                status = 413
                await self._problem(self._too_large_problem(limit), scope, receive, send, close=True)
                return
            try:
                # A coding describes the request's content: without any (no length or a zero one, no chunks) there
                # is nothing to decode, and the header is ignored rather than refused.
                has_content = (_header(scope, b"transfer-encoding") is not None
                               or (declared is not None and declared.strip("0") != ""))
                coding = request_coding(_headers(scope, b"content-encoding")) if has_content else None
            except ProblemError as problem:
                status = problem.status
                await self._problem(problem, scope, receive, send, close=True)
                return
            if coding is not None:
                inflater = GzipBody(limit)
                # The app sees the inflated body: without the coding, and without the compressed length. The scope is
                # changed in place: routing records the matched route in it, which the access log reads.
                scope["headers"] = [(key, value) for key, value in scope["headers"]
                                    if key not in (b"content-encoding", b"content-length")]
            await self.app(scope, limited_receive, send_with_headers)
        except _BodyRefused as refusal:
            if not response_started:
                status = refusal.problem.status
                await self._problem(refusal.problem, scope, receive, send, close=True)
        except Exception:
            # Starlette's server-error middleware has already logged it and answered 500; re-raising would only
            # make the server log the same error again, with its message (which may hold PHI).
            if not response_started:
                raise
        finally:
            self._log(scope, status, started)
            request_id_var.reset(token)

    @staticmethod
    def _too_large_problem(limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request bodies are limited to {limit} bytes")

    @staticmethod
    async def _problem(exc: ProblemError, scope: Scope, receive: Receive, send: Send, *, close: bool = False) -> None:
        response = problem_response(exc.status, slug=exc.slug, title=exc.title, detail=exc.detail, code=exc.code,
                                    headers=exc.headers)
        response.headers["x-request-id"] = request_id_var.get() or ""
        response.headers["cache-control"] = "no-store"
        if close:
            response.headers["connection"] = "close"
        await response(scope, receive, send)

    @staticmethod
    def _log(scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        access_log.info(
            "%s %s %d %.1fms", scope.get("method"), template, status, (time.perf_counter() - started) * 1000
        )


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == name]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None
