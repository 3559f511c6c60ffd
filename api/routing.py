"""The route class of every router (`APIRouter(route_class=CheckedRoute)`): unknown query parameters are a 422, and
the hottest routes may take a fast path through FastAPI's request handling.

Unknown query parameters: FastAPI ignores query parameters a route does not declare, and a typo such as
`updatedSince` must not look like success. The handler compares the request's query keys with the names the route's
dependency tree declares (worked out once, when the handler is built) before anything else runs. A route class
rather than an application-wide dependency: FastAPI solves each dependency as one more level on every request, which
cost the phone's score post 4 % of its CPU (bench/README.md, 2026-11-30).

Fast paths (`@solved_by(solver)` under the route's decorator): FastAPI's general request handling (solving the
dependency tree, parsing the body into Python objects and validating those) cost the phone's
score post a fifth of its instructions, and that request is bound by the server's CPU (bench/README.md, 2026-11-30).
A solver builds the endpoint's arguments for the ordinary request alone, with the route's own models and
dependencies, or answers None, before doing anything with an effect, for anything else (another content type, a body
or header that does not validate): FastAPI's handler then takes the request as if there were no fast path, so every
error keeps exactly the shape it had. Either way the route's own endpoint runs, and its answer is validated
and written by FastAPI's own field for the declared response model; the route stays documented by FastAPI as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import ResponseValidationError
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from api.errors import ValidationFailed

UNKNOWN = "Unknown query parameter"
# The endpoint's arguments for an ordinary request, without `response`; None: let FastAPI's handler decide.
Solver = Callable[[Request], Awaitable[dict[str, Any] | None]]
_SOLVER = "__calmtrack_solver__"
E = TypeVar("E", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


def declared_query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameter names (aliases) a route's whole dependency tree declares."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


def refuse_unknown(keys: Iterable[str], declared: frozenset[str]) -> None:
    unknown = sorted(set(keys) - declared)
    if unknown:
        raise ValidationFailed(
            f"{UNKNOWN}: {', '.join(unknown)}",
            errors=[{"loc": ["query", name], "msg": UNKNOWN, "type": "unknown_parameter"} for name in unknown],
        )


def solved_by(solver: Solver) -> Callable[[E], E]:
    """Gives a route a fast path (the module's docstring): `solver(request)` answers the endpoint's arguments, all
    but `response`, or None. Placed under `@router.post(...)`."""

    def mark(endpoint: E) -> E:
        setattr(endpoint, _SOLVER, solver)
        return endpoint

    return mark


async def json_body(request: Request, model: type[M]) -> M | None:
    """The body as `model` when it is JSON (`Content-Type: application/json`, parameters allowed) that validates,
    parsed and validated in one step by pydantic; None otherwise. What it accepts, FastAPI's `json.loads` and
    validation accept with the same value (tests/test_routing.py); what it refuses is left to FastAPI, for the
    error's shape."""
    content_type = request.headers.get("content-type")
    if content_type is None or content_type.partition(";")[0].strip().lower() != "application/json":
        return None
    try:
        return model.model_validate_json(await request.body())
    except ValidationError:
        return None


class CheckedRoute(APIRoute):
    """An APIRoute that answers 422 for query parameters it does not declare, and takes its endpoint's fast path
    (`solved_by`) where it has one."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        declared = declared_query_names(self.dependant)
        solver: Solver | None = getattr(self.endpoint, _SOLVER, None)
        fast = handle if solver is None else self._fast_path(solver, handle)

        async def checked(request: Request) -> Response:
            if request.scope.get("query_string"):
                refuse_unknown(request.query_params.keys(), declared)
            return await fast(request)

        return checked

    def _fast_path(self, solver: Solver, handle: Callable[[Request], Coroutine[Any, Any, Response]]
                   ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint, field, status_code = self.endpoint, self.response_field, self.status_code
        if field is None or status_code is None:
            raise TypeError(f"{self.path}: a fast path needs a response model and a status code")

        async def fast(request: Request) -> Response:
            arguments = await solver(request)
            if arguments is None:
                return await handle(request)
            # As FastAPI does: the endpoint may set the status and add headers on a `response` of its own.
            sub_response = Response()
            del sub_response.headers["content-length"]
            sub_response.status_code = None  # type: ignore[assignment]
            returned = await endpoint(**arguments, response=sub_response)
            value, errors = field.validate(returned, {}, loc=("response",))
            if errors:
                raise ResponseValidationError(errors=errors, body=returned)
            answer = Response(field.serialize_json(value, by_alias=True), media_type="application/json",
                              status_code=sub_response.status_code or status_code)
            answer.headers.raw.extend(sub_response.headers.raw)
            return answer

        return fast
