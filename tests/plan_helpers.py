"""Shared by the plan tests: the contract's example plan and small HTTP helpers."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import func, select

from api.plans.schemas import PlanCreate
from tests.factories import Actor

# The contract's example body, verbatim: the one the OpenAPI document shows for PlanCreate.
EXAMPLE_PLAN: dict[str, Any] = PlanCreate.model_config["json_schema_extra"]["examples"][0]


def plan_body(**overrides: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE_PLAN)
    body.update(copy.deepcopy(overrides))
    return body


async def create_plan(client, actor: Actor, patient_id, body: dict[str, Any] | None = None, **headers: str):
    return await client.post(f"/v1/patients/{patient_id}/plans", json=plan_body() if body is None else body,
                             headers={**actor.headers, **headers})


async def new_plan(client, world, body: dict[str, Any] | None = None, *, patient=None) -> dict[str, Any]:
    """A draft plan created by the care-team clinician; its JSON with the ETag under "etag"."""
    response = await create_plan(client, world.clinician, (patient or world.patient).id, body)
    assert response.status_code == 201, response.text
    return {**response.json(), "etag": response.headers["etag"]}


async def patch_plan(client, actor: Actor, plan_id, body: dict[str, Any], etag: str | None):
    headers = {**actor.headers, **({"If-Match": etag} if etag is not None else {})}
    return await client.patch(f"/v1/plans/{plan_id}", json=body, headers=headers)


async def set_status(client, actor: Actor, plan_id, status: str, **extra: Any):
    return await client.post(f"/v1/plans/{plan_id}/status", json={"status": status, **extra}, headers=actor.headers)


async def count(app, model, *where) -> int:
    async with app.state.sessions() as session:
        return (await session.exec(select(func.count()).select_from(model).where(*where))).scalar_one()


async def rows(app, model, *where, order_by=None) -> list:
    async with app.state.sessions() as session:
        stmt = select(model).where(*where)
        if order_by is not None:
            stmt = stmt.order_by(order_by)
        return list((await session.exec(stmt)).scalars().all())
