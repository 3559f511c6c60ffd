"""Shared by the session tests: the contract's example session (moved into the past) and small HTTP helpers."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from tests.factories import Actor
from tests.plan_helpers import new_plan, plan_body, set_status

# The contract's example happens on 2026-12-01; sessions cannot be recorded ahead of time, so the tests hold it
# two days before today, at the same local times and offset.
DAY = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).date().isoformat()
# Plans the sessions are given under start well before DAY (the example's own start date would come after it, and
# a session before its plan's start date is flagged).
PLAN_START = "2026-01-05"


def at(clock: str, offset: str = "-05:00") -> str:
    """An instant on the example day: at("09:00") → "<DAY>T09:00:00-05:00"."""
    return f"{DAY}T{clock}:00{offset}"


def utc(clock: str) -> str:
    """The server's answer for at(clock): the same instant in UTC with Z."""
    local = dt.datetime.fromisoformat(at(clock))
    return local.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def example_session(world, plan_id: str | None) -> dict[str, Any]:
    """The contract's example body with the world's ids."""
    return {
        "plan_id": plan_id, "supervising_clinician_id": str(world.clinician.id),
        "started_at": at("09:00"), "ended_at": at("11:10"),
        "medication": "ketamine", "route": "iv", "dose_mg": 35.0, "weight_kg": 70.0,
        "vitals": [{"at": at("08:55"), "phase": "pre", "systolic": 128, "diastolic": 82, "heart_rate": 74,
                    "spo2": 98}],
        "dissociation_cadss": 18, "sedation_moaas": 5, "pre_suds": 70, "post_suds": 30,
        "adverse_events": [{"kind": "nausea", "severity": "mild", "action": "ondansetron 4 mg"}],
        "notes": "clinician-only", "discharge": {"at": at("11:10"), "criteria_met": True},
    }


def session_body(world, plan_id: str | None, **overrides: Any) -> dict[str, Any]:
    body = example_session(world, plan_id)
    body.update(copy.deepcopy(overrides))
    return body


async def active_plan(client, world, *, patient=None, **plan_overrides: Any) -> dict[str, Any]:
    """A plan (the contract's example, starting on PLAN_START, unless overridden) created and activated by the
    care-team clinician."""
    plan = await new_plan(client, world, plan_body(**{"start_date": PLAN_START, **plan_overrides}), patient=patient)
    response = await set_status(client, world.clinician, plan["id"], "active")
    assert response.status_code == 200, response.text
    return response.json()


async def create_session(client, actor: Actor, patient_id, body: dict[str, Any], **headers: str):
    return await client.post(f"/v1/patients/{patient_id}/sessions", json=body, headers={**actor.headers, **headers})


async def current_plan(client, world) -> dict[str, Any]:
    """world.patient's active plan, activated now if the patient has none yet."""
    listed = await client.get(f"/v1/patients/{world.patient.id}/plans", params={"status": "active"},
                              headers=world.clinician.headers)
    return next(iter(listed.json()["items"]), None) or await active_plan(client, world)


async def new_session(client, world, plan: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A draft session of world.patient under `plan` (default: its active plan); JSON plus "etag"."""
    plan = plan or await current_plan(client, world)
    response = await create_session(client, world.clinician, world.patient.id,
                                    session_body(world, plan["id"], **overrides))
    assert response.status_code == 201, response.text
    return {**response.json(), "etag": response.headers["etag"]}


async def patch_session(client, actor: Actor, session_id, body: dict[str, Any], etag: str | None):
    headers = {**actor.headers, **({"If-Match": etag} if etag is not None else {})}
    return await client.patch(f"/v1/sessions/{session_id}", json=body, headers=headers)


async def sign(client, actor: Actor, session_id, etag: str | None = None):
    headers = {**actor.headers, **({"If-Match": etag} if etag is not None else {})}
    return await client.post(f"/v1/sessions/{session_id}/sign", headers=headers)


async def add_addendum(client, actor: Actor, session_id, text: str, **headers: str):
    return await client.post(f"/v1/sessions/{session_id}/addenda", json={"text": text},
                             headers={**actor.headers, **headers})


async def read(client, actor: Actor, session_id):
    return await client.get(f"/v1/sessions/{session_id}", headers=actor.headers)


def codes(session: dict[str, Any]) -> list[str]:
    return [warning["code"] for warning in session["warnings"]]
