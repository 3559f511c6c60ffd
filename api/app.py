"""The application factory."""

from __future__ import annotations

import contextlib
import gc
from http import HTTPStatus
from typing import Any

from anyio import CapacityLimiter
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from api import migrate
from api.alerts.router import router as alerts_router
from api.audit.router import router as audit_router
from api.auth.router import router as auth_router
from api.charts.router import router as charts_router
from api.clients.router import OPENAPI_SCHEMAS as CLIENT_SCHEMAS
from api.clients.router import router as clients_router
from api.clients.router import token_router
from api.dashboard.router import router as dashboard_router
from api.exports.router import router as exports_router
from api.db import create_engine, is_sqlite, session_factory
from api.deps import get_session
from api.compression import ResponseCompression
from api.errors import FieldError, Problem, install_error_handlers
from api.health.router import router as health_router
from api.instruments.router import router as instruments_router
from api.logging import configure_logging
from api.mfa.router import router as mfa_router
from api.middleware import RequestContextMiddleware
from api.organizations.router import router as organizations_router
from api.patients.router import router as patients_router
from api.plans.router import router as plans_router
from api.ratelimit import RateLimiter
from api.reports.router import router as reports_router
from api.dashboard.service import CONCURRENT_PAGES
from api.reports.service import CONCURRENT_RENDERS
from api.schedules.router import router as schedules_router
from api.scores.router import BODY_LIMITS
from api.scores.router import router as scores_router
from api.security.revocation import Revocations
from api.sessions.router import router as sessions_router
from api.settings import Settings, get_settings
from api.users.router import router as users_router
from api.webhooks.router import router as webhooks_router
from models.base import utcnow

GC_YOUNG_THRESHOLD = 100_000  # allocations between young-generation collections; CPython's default is 700

# Requests are matched against routers in this order, so the hot paths come first: the phones' score sync, by far
# the most frequent, then charts and the dashboard (14th before, which cost it 160 µs a request). No two routers have
# paths that match the same request, so the order changes nothing else.
ROUTERS = (scores_router, charts_router, dashboard_router, health_router, auth_router, users_router, patients_router,
           audit_router, instruments_router, plans_router, sessions_router, organizations_router, alerts_router,
           schedules_router, reports_router, mfa_router, token_router, clients_router, exports_router,
           webhooks_router)


async def release(app: FastAPI) -> None:
    """What a stopping app lets go of (the lifespan's end, and every app a test makes): a revocation reread in
    flight, then the database connections. A reread left running would hold its connection, mid-statement and with
    its locks, after the event loop had gone."""
    await app.state.revocations.close()
    await app.state.engine.dispose()
    if app.state.revocations.engine is not app.state.engine:
        await app.state.revocations.engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        # Everything loaded so far lives as long as the process: keep it out of the garbage collector's scans, and
        # scan the young generation less often (a request allocates thousands of objects; few form cycles).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        yield
        await release(_app)

    app = FastAPI(
        title="Calmtrack API",
        version="1.0.0",
        summary="Treatment plans, supervised ketamine sessions and self-reported anxiety scores.",
        description=DESCRIPTION,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # FastAPI's native OpenTelemetry, for deployments that configure providers; off, it costs no per-request
        # check for them.
        telemetry=None if settings.telemetry_enabled else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.schema_head = migrate.head_revision()
    app.state.clock = utcnow  # what "now" is for two-factor codes; tests replace it (api.deps.NowDep)
    # On PostgreSQL the revocation reread has a connection of its own: from the requests' pool it waited its turn
    # behind every queued request, and a request past the polling interval waited for it in turn (p99 under load).
    reread_engine = engine if is_sqlite(engine) else create_engine(settings.database_url, pool_size=1)
    app.state.revocations = Revocations(reread_engine, poll_seconds=settings.revocation_poll_seconds)
    app.state.rate_limiter = RateLimiter(settings.rate_limit, settings.rate_limit_storage_url)
    app.state.report_renders = CapacityLimiter(CONCURRENT_RENDERS)
    app.state.dashboard_pages = CapacityLimiter(CONCURRENT_PAGES)

    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # Inside CORS and the request-context middleware: their headers are added to the compressed answer as to any.
    app.add_middleware(ResponseCompression)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Content-Encoding", "If-Match", "If-None-Match",
                           "Idempotency-Key", "Prefer", "X-Request-ID"],
            expose_headers=["ETag", "X-Request-ID", "Retry-After", "Preference-Applied", "X-Sync-Watermark",
                            "Content-Disposition"],
        )
    _wrap_outermost(app, RequestContextMiddleware, max_body_bytes=settings.max_body_bytes,
                    body_limits={route: max(limit, settings.max_body_bytes) for route, limit in BODY_LIMITS.items()})
    _document_problems(app)
    return app


IMPLIED_DESCRIPTIONS = {
    400: "Bad request: an unparsable body, or a Content-Encoding: gzip body that is not valid gzip",
    413: "Payload too large: the body (after decompression) is over the limit",
    415: "Unsupported media type: a Content-Encoding other than gzip",
}
DESCRIPTION = """\
Answers are gzip-compressed when the request accepts it (`Accept-Encoding: gzip`), and request bodies may be sent
with `Content-Encoding: gzip` (their size limit applies after decompression). Errors are RFC 9457
`application/problem+json` with a stable `code`. See docs/mobile.md and docs/conventions.md."""


def operation_id(route: APIRoute) -> str:
    """`<tag>-<function name>`, e.g. `scores-create_my_score`: the method names of generated clients, so short and
    stable (the framework's default appends the path and method)."""
    return f"{route.tags[0]}-{route.name}"


def _oauth_error(response: dict[str, Any]) -> bool:
    """A response the route documents as an RFC 6749 error (the token endpoint), not a problem."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref", "").endswith("/OAuthErrorBody")


def _uses_database(dependant: Dependant) -> bool:
    """Whether the route opens an ORM session (routes on `api.deps.sessions_of` declare their 503 themselves)."""
    return any(d.call is get_session or _uses_database(d) for d in dependant.dependencies)


def _wrap_outermost(app: FastAPI, middleware: type, **options: Any) -> None:
    """Mounts `middleware` outside Starlette's server-error middleware, so that 500 answers carry the request id
    and the request-id context is still set while the error is logged."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: middleware(build(), **options)  # type: ignore[method-assign]


def _document_problems(app: FastAPI) -> None:
    """Error responses are declared per route as application/problem+json referring to the Problem schema."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        database_operations = {operation_id(route) for router in ROUTERS for route in router.routes
                               if isinstance(route, APIRoute) and _uses_database(route.dependant)}
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}"))
        components.setdefault("FieldError", FieldError.model_json_schema())
        components["Problem"].pop("$defs", None)
        # The OAuth token endpoint's form body and RFC 6749 error body, which its route declares by reference.
        for name, model in CLIENT_SCHEMAS.items():
            components.setdefault(name, model.model_json_schema(ref_template="#/components/schemas/{model}"))
        schema["components"].setdefault("securitySchemes", {}).setdefault(
            "HTTPBasic", {"type": "http", "scheme": "basic", "description": "API client id and secret (RFC 6749 2.3.1)"})
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                # Answered by shared machinery rather than the route, so declared here: every authenticated route
                # is rate limited per caller (429), every route with a database session answers 503 while the
                # database is unreachable. Both say when to retry.
                retryable = ({429} if operation.get("security") else set()) | (
                    {503} if operation["operationId"] in database_operations else set())
                for status in retryable:
                    responses.setdefault(str(status), {"description": HTTPStatus(status).phrase})
                if any(p["in"] == "header" and p["name"] == "Prefer" for p in operation.get("parameters", [])):
                    for code, response in responses.items():
                        if code.startswith("2"):
                            response.setdefault("headers", {})["Preference-Applied"] = {
                                "description": "return=minimal when the answer is the minimal shape (RFC 7240)",
                                "schema": {"type": "string"}}
                for code in {"429", "503"} & responses.keys():
                    responses[code]["headers"] = {"Retry-After": {
                        "description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}
                # What the framework and middleware answer on their own, whatever the route declares: an unparsable
                # body or corrupt gzip (400), an oversized one (413, after decompression), a Content-Encoding other
                # than gzip (415), invalid or unknown parameters or body (422).
                implied = ({400, 413, 415} if "requestBody" in operation else set()) | {422}
                for status in implied:
                    responses.setdefault(str(status), {"description": IMPLIED_DESCRIPTIONS.get(
                        status, HTTPStatus(status).phrase)})
                for code, response in responses.items():
                    if code.isdigit() and int(code) >= 400 and not _oauth_error(response):
                        response["content"] = {
                            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
