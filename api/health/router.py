from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text

from api.errors import ServiceUnavailable, problem_responses
from api.routing import CheckedRoute

router = APIRouter(route_class=CheckedRoute, tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    schema_revision: str


class NotReady(ServiceUnavailable):
    status, slug, title = 503, "not-ready", "Service not ready"


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=problem_responses(503))
async def readyz(request: Request) -> Readiness:
    """The database answers and its schema is at the head revision this build expects."""
    expected = request.app.state.schema_head
    try:
        async with request.app.state.engine.connect() as connection:
            current = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar_one_or_none()
    except Exception:
        raise NotReady("The database is unreachable or not migrated") from None
    if current != expected:
        raise NotReady(f"Database schema is at {current}, this build needs {expected}: run `calmtrack migrate`")
    return Readiness(status="ok", schema_revision=current)
