"""Unknown query parameters are a 422 on every route: a typo such as `updatedSince` must not look like success.

FastAPI ignores query parameters a route does not declare. One application-wide dependency compares the request's
query keys with the names the matched route's dependency tree declares (worked out once per route).
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant

from api.errors import ValidationFailed

UNKNOWN = "Unknown query parameter"

# Cached on the route object itself: routes compare by value, so they cannot key a dict, and ids can be reused.
_CACHE = "_calmtrack_query_names"


def declared_query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameter names (aliases) a route's whole dependency tree declares."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


async def refuse_unknown_query_parameters(request: Request) -> None:
    if not request.scope.get("query_string"):
        return
    route = request.scope["route"]
    declared = getattr(route, _CACHE, None)
    if declared is None:
        declared = declared_query_names(route.dependant)
        setattr(route, _CACHE, declared)
    unknown = sorted(request.query_params.keys() - declared)
    if unknown:
        raise ValidationFailed(
            f"{UNKNOWN}: {', '.join(unknown)}",
            errors=[{"loc": ["query", name], "msg": UNKNOWN, "type": "unknown_parameter"} for name in unknown],
        )
