"""The route class of every router (`APIRouter(route_class=CheckedRoute)`): unknown query parameters are a 422, and
the hottest routes may take a fast path through FastAPI's request handling.

Unknown query parameters: FastAPI ignores query parameters a route does not declare, and a typo such as
`updatedSince` must not look like success. The handler compares the request's query keys with the names the route's
dependency tree declares (worked out once, when the handler is built) before anything else runs. A route class
rather than an application-wide dependency: FastAPI solves each dependency as one more level on every request, which
cost the phone's score post 4 % of its CPU (bench/README.md, 2026-11-30).

Fast paths (`@fast_path` under the route's decorator): FastAPI's general request handling (solving the dependency
tree level by level, parsing a body into Python objects and validating those) cost the phone's score post 16 % of
its instructions and the chart 8 %, and both requests are bound by the server's CPU (bench/README.md, 2026-11-30).
A fast route's arguments are solved by a plan made once from the route's own dependency tree (`LeanSolver`): its
parameters are validated by the steps of FastAPI's own `request_params_to_args`, a JSON body by pydantic in one step
(`model_validate_json`); only once every input is valid are the dependencies called, in FastAPI's order. Anything
that does not validate (or a body that is not `application/json`) is left, before anything with an effect has
happened, to FastAPI's handler, which takes the request as if there were no fast path: every error keeps exactly
the shape it had. Either way the route's own endpoint runs, and its answer is validated and written by FastAPI's
own field for the declared response model; the route stays documented by FastAPI as before.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import ResponseValidationError
from fastapi.dependencies.models import Dependant, _is_coroutine_callable  # FastAPI's test of what it awaits
from fastapi.dependencies.utils import (  # what FastAPI's dependency solver validates parameters with
    _get_multidict_value,
    _get_param_aliases,
    _get_param_model,
    _validate_value_with_model_field,
    request_params_to_args,
)
from fastapi.routing import APIRoute, _effective_route_context_var
from pydantic_core import PydanticUndefined as Undefined
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel, ValidationError

from api.errors import ValidationFailed

UNKNOWN = "Unknown query parameter"
E = TypeVar("E", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)
_FAST = "__calmtrack_fast_path__"
# FastAPI's parameter sources, as its dependency solver reads them.
_SOURCES: tuple[tuple[str, Callable[[Request], Any]], ...] = (
    ("path_params", lambda request: request.path_params), ("query_params", lambda request: request.query_params),
    ("header_params", lambda request: request.headers), ("cookie_params", lambda request: request.cookies))


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


def fast_path(endpoint: E) -> E:
    """Gives a route the fast path the module's docstring describes; placed under `@router.get(...)`."""
    setattr(endpoint, _FAST, True)
    return endpoint


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


def _as_served(route: APIRoute) -> Any:
    """The route as FastAPI serves it: for a route of an included router, its include context (the include's
    dependencies, the app's dependency overrides), resolved as `APIRoute.get_route_handler` resolves it (a private
    name of FastAPI's, pinned in the lock file: tests/test_routing.py fails if it changes meaning)."""
    context = _effective_route_context_var.get()
    return context if context is not None and context.original_route is route else route


class _Parameter:
    """One parameter, validated as FastAPI's `request_params_to_args` validates it, with what that function works
    out from the field alone (its parameter model, its request key) worked out once."""

    def __init__(self, field: Any) -> None:
        aliases = _get_param_aliases(field)
        self.field = field
        # A parameter model, or several names to look for: FastAPI's general case, left to its own function.
        self.general = _get_param_model(field) is not None or len(aliases) > 1
        self.alias = aliases[0][1]
        self.loc = (field.field_info.in_.value, self.alias)

    def read(self, received: Any, values: dict[str, Any]) -> bool:
        """Adds the parameter's value to `values`; False if it does not validate."""
        if self.general:
            found, errors = request_params_to_args([self.field], received)
            values.update(found)
            return not errors
        # An absent key is what FastAPI's extraction turns into Undefined (for a sequence too): skip its checks.
        found = Undefined if received.get(self.alias) is None else _get_multidict_value(self.field, received,
                                                                                         alias=self.alias)
        value, errors = _validate_value_with_model_field(field=self.field, value=found, values=values, loc=self.loc)
        values[self.field.name] = value
        return not errors


class LeanSolver:
    """A route's arguments, solved for a request whose inputs are all valid; None for any other request.

    Handles the dependency shapes this codebase's fast routes use: parameters (path, query, header, cookie), one
    JSON body model, the request and the response, and `async` dependencies of parameters and the request (the
    bearer-token check, a query-parameter class). Anything else raises TypeError when the route is built."""

    def __init__(self, route: Any) -> None:  # an APIRoute, or FastAPI's context of an included one (`_as_served`)
        dependant = route.dependant
        self.route = route
        self.dependencies = [(sub, self._sources(sub)) for sub in dependant.dependencies]
        self.own = self._sources(dependant)
        self.body: tuple[str, type[BaseModel]] | None = None
        if dependant.body_params:
            field = dependant.body_params[0]
            model = field.field_info.annotation
            # Several body parameters are embedded by FastAPI, as one marked `embed` is.
            if (len(dependant.body_params) > 1 or getattr(field.field_info, "embed", False)
                    or not (isinstance(model, type) and issubclass(model, BaseModel))):
                raise TypeError(f"{route.path}: a fast path takes one JSON body model, not embedded")
            self.body = (field.name, model)
        for sub in dependant.dependencies:
            if (sub.dependencies or sub.body_params or sub.response_param_name
                    or not _is_coroutine_callable(sub.call) or getattr(sub, "concurrency", None) is not None
                    or sub.background_tasks_param_name or sub.security_scopes_param_name
                    or sub.websocket_param_name or sub.http_connection_param_name):
                raise TypeError(f"{route.path}: a fast path's dependencies are async functions of parameters and "
                                f"the request ({sub.call!r} is not)")
        calls = [sub.call for sub in dependant.dependencies]
        if len(set(map(id, calls))) != len(calls):
            raise TypeError(f"{route.path}: a fast path calls each dependency once")
        if (dependant.background_tasks_param_name or dependant.security_scopes_param_name
                or dependant.websocket_param_name or dependant.http_connection_param_name):
            raise TypeError(f"{route.path}: a fast path's endpoint takes no background tasks, security scopes or "
                            "connection (the request is solved)")

    @staticmethod
    def _sources(dependant: Dependant) -> list[tuple[list[_Parameter], Callable[[Request], Any]]]:
        return [([_Parameter(field) for field in getattr(dependant, name)], read) for name, read in _SOURCES
                if getattr(dependant, name)]

    @staticmethod
    def _parameters(sources: list[tuple[list[_Parameter], Callable[[Request], Any]]], request: Request
                    ) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        for parameters, read in sources:
            received = read(request)
            for parameter in parameters:
                if not parameter.read(received, values):
                    return None
        return values

    async def __call__(self, request: Request) -> dict[str, Any] | None:
        provider = self.route.dependency_overrides_provider
        if provider is not None and getattr(provider, "dependency_overrides", None):
            return None  # overridden dependencies are FastAPI's to solve
        solved = []
        for sub, sources in self.dependencies:
            values = self._parameters(sources, request)
            if values is None:
                return None
            if sub.request_param_name:
                values[sub.request_param_name] = request
            solved.append((sub, values))
        arguments = self._parameters(self.own, request)
        if arguments is None:
            return None
        if self.body is not None:
            name, model = self.body
            body = await json_body(request, model)
            if body is None:
                return None
            arguments[name] = body
        # Every input is valid: from here on, what FastAPI would do, in its order.
        for sub, values in solved:
            result = await sub.call(**values)  # type: ignore[misc]
            if sub.name is not None:
                arguments[sub.name] = result
        if self.route.dependant.request_param_name:
            arguments[self.route.dependant.request_param_name] = request
        return arguments


class CheckedRoute(APIRoute):
    """An APIRoute that answers 422 for query parameters it does not declare, and takes the fast path where its
    endpoint asks for it (`fast_path`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        served = _as_served(self)
        declared = declared_query_names(served.dependant)
        fast = self._fast_path(served, handle) if getattr(self.endpoint, _FAST, False) else handle

        async def checked(request: Request) -> Response:
            if request.scope.get("query_string"):
                refuse_unknown(request.query_params.keys(), declared)
            return await fast(request)

        return checked

    def _fast_path(self, served: Any, handle: Callable[[Request], Coroutine[Any, Any, Response]]
                   ) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        solve = LeanSolver(served)
        endpoint, field, status_code = self.endpoint, served.response_field, served.status_code or 200
        response_name = served.dependant.response_param_name
        if field is None or not _is_coroutine_callable(endpoint):
            raise TypeError(f"{self.path}: a fast path needs an async endpoint with a response model")

        async def fast(request: Request) -> Response:
            arguments = await solve(request)
            if arguments is None:
                return await handle(request)
            # As FastAPI does: the endpoint may set the status and add headers on a `response` of its own, or
            # answer a Response itself.
            sub_response = Response()
            del sub_response.headers["content-length"]
            sub_response.status_code = None  # type: ignore[assignment]
            if response_name:
                arguments[response_name] = sub_response
            returned = await endpoint(**arguments)
            if isinstance(returned, Response):
                return returned
            value, errors = field.validate(returned, {}, loc=("response",))
            if errors:
                raise ResponseValidationError(errors=errors, body=returned)
            answer = Response(field.serialize_json(value, by_alias=True), media_type="application/json",
                              status_code=sub_response.status_code or status_code)
            if not is_body_allowed_for_status_code(answer.status_code):
                answer.body = b""
            answer.headers.raw.extend(sub_response.headers.raw)
            return answer

        return fast
