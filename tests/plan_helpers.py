"""Shared by the plan tests: the contract's example plan and small HTTP helpers."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import func, select

from tests.factories import Actor

# The contract's example body, verbatim.
EXAMPLE_PLAN: dict[str, Any] = {
    "title": "Ketamine-assisted treatment for GAD",
    "indication": "Generalized anxiety disorder, treatment-resistant",
    "start_date": "2026-12-01",
    "protocol": {"medication": "ketamine", "route": "iv", "dose": {"amount": 0.5, "unit": "mg/kg"},
                 "infusion_minutes": 40,
                 "phases": [{"name": "induction", "sessions": 6, "interval_days": 3},
                            {"name": "maintenance", "sessions": 4, "interval_days": 28}]},
    "goals": [{"description": "Remission of anxiety", "instrument": "gad7", "target_total": 4,
               "by_date": "2027-03-01"}],
    "adjunct_therapies": [{"kind": "cbt", "frequency": "weekly", "provider": "Dr. Rivera"}],
    "assessments": [{"instrument": "gad7", "every_days": 7}, {"instrument": "phq9", "every_days": 14}],
    "safety": {"max_systolic": 160, "max_diastolic": 100},
    "prior_treatments": [{"name": "sertraline", "kind": "ssri", "adequate_trial": True, "outcome": "no_response"},
                         {"name": "venlafaxine", "kind": "snri", "adequate_trial": True,
                          "outcome": "partial_response"}],
    "suitability": {"assessed_at": "2026-11-20", "contraindications": [],
                    "notes": "BP controlled; no psychosis history"},
}


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
