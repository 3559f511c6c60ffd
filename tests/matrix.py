"""The role × route matrix: every caller gets exactly the contract's answer for every route.

Each domain's tests declare their routes as `Route`s with the expected status per actor; `check_route` runs one
(route, actor) cell against a fresh world. Callers without a valid token always get 401.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.factories import ACTOR_NAMES, World
from tests.tokens import BAD_TOKENS

UNAUTHENTICATED = ("no_token", "expired", "other_key", "alg_none")
CALLERS = ACTOR_NAMES + UNAUTHENTICATED


@dataclass
class Route:
    name: str
    method: str
    path: Callable[[World], str]
    expected: dict[str, int]  # actor name → status; unauthenticated callers are always 401
    json: Callable[[World], Any] | None = None
    headers: Callable[[World], dict[str, str]] = field(default=lambda w: {})

    def status_for(self, caller: str) -> int:
        return 401 if caller in UNAUTHENTICATED else self.expected[caller]


# Callers who may not see world.patient: they get 404 on every route about it.
OUTSIDERS = ("other_clinician", "other_patient_user", "admin_b", "clinician_b")


def on_patient(ok: int, *, admin: int | None = None, prescriber: int | None = None, monitor: int | None = None,
               therapist: int | None = None, patient: int | None = None) -> dict[str, int]:
    """Expected statuses of a route about world.patient: whoever may see the patient (its organization's admin,
    its care team's prescriber, monitor and therapist, and the patient) gets `ok` unless named otherwise;
    everyone else 404."""
    def given(status: int | None) -> int:
        return ok if status is None else status

    return dict(admin=given(admin), clinician=given(prescriber), monitor=given(monitor), therapist=given(therapist),
                patient_user=given(patient), **{outsider: 404 for outsider in OUTSIDERS})


def by_role(*, admin: int, clinician: int, patient: int) -> dict[str, int]:
    """Expected statuses of a route about no one patient: the same for every caller of an account role."""
    return dict(admin=admin, admin_b=admin, clinician=clinician, monitor=clinician, therapist=clinician,
                other_clinician=clinician, clinician_b=clinician, patient_user=patient, other_patient_user=patient)


def cells(routes: list[Route]) -> list[tuple[Route, str]]:
    """pytest parameters: every route with every caller (the expected map must name every actor)."""
    for route in routes:
        missing = set(ACTOR_NAMES) - set(route.expected)
        assert not missing, f"{route.name}: no expectation for {sorted(missing)}"
    return [(route, caller) for route in routes for caller in CALLERS]


def cell_id(value: object) -> str:
    return value.name if isinstance(value, Route) else str(value)


def auth_headers(world: World, caller: str) -> dict[str, str]:
    if caller == "no_token":
        return {}
    if caller in BAD_TOKENS:
        return {"Authorization": f"Bearer {BAD_TOKENS[caller](world)}"}
    return world.actor(caller).headers


async def check_route(client, world: World, route: Route, caller: str):
    headers = {**route.headers(world), **auth_headers(world, caller)}
    body = route.json(world) if route.json else None
    response = await client.request(route.method, route.path(world), json=body, headers=headers)
    expected = route.status_for(caller)
    assert response.status_code == expected, f"{route.name} as {caller}: {response.status_code} {response.text}"
    if expected >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == expected
    if expected == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    return response
