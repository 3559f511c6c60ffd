"""Every route and dependency runs on the event loop: FastAPI calls a plain `def` (or a class used as `Depends()`)
in a worker thread, a hop that costs more than most requests' own work (issue 13 found two on hot paths)."""

import inspect

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.app import ROUTERS


def _on_the_loop(call: object) -> bool:
    if inspect.isclass(call):
        return False
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    method = getattr(call, "__call__", None)  # an instance such as HTTPBearer()
    return inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)


def _threaded(dependant: Dependant) -> list[str]:
    found = []
    for sub in dependant.dependencies:
        if not _on_the_loop(sub.call):
            found.append(getattr(sub.call, "__qualname__", repr(sub.call)))
        found += _threaded(sub)
    return found


def test_no_route_or_dependency_is_run_in_a_worker_thread():
    routes = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    assert len(routes) > 50
    threaded = {f"{sorted(route.methods)} {route.path}": names for route in routes
                if (names := _threaded(route.dependant) + ([] if _on_the_loop(route.endpoint) else ["endpoint"]))}
    assert threaded == {}


def test_the_check_sees_a_class_dependency():
    from typing import Annotated

    from fastapi import APIRouter, Depends

    from api.charts.schemas import ChartQuery

    router = APIRouter()

    @router.get("/x")
    async def endpoint(query: Annotated[ChartQuery, Depends()]) -> None: ...

    [route] = router.routes
    assert _threaded(route.dependant) == ["ChartQuery"]
