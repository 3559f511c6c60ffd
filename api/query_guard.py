"""Unknown query parameters are a 422 on every route: a typo such as `updatedSince` must not look like success.

FastAPI ignores query parameters a route does not declare. Every router's routes are `CheckedRoute`s, whose handler
compares the request's query keys with the names the route's dependency tree declares (worked out once, when the
handler is built) before anything else runs. A route class rather than an application-wide dependency: FastAPI
solves each dependency as one more level on every request, which cost the phone's score post 4 % of its CPU
(bench/README.md, 2026-11-30).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.errors import ValidationFailed

UNKNOWN = "Unknown query parameter"


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


class CheckedRoute(APIRoute):
    """An APIRoute that answers 422 for query parameters it does not declare (`route_class=` of every router)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        declared = declared_query_names(self.dependant)

        async def checked(request: Request) -> Response:
            if request.scope.get("query_string"):
                refuse_unknown(request.query_params.keys(), declared)
            return await handle(request)

        return checked
