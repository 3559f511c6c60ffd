"""The role × route matrix: every caller gets exactly the contract's answer for every route.

Each domain's tests declare their routes as `Route`s with the expected status per actor; `check_route` runs one
(route, actor) cell against a fresh world. Callers without a valid token (a revoked API client's included) always
get 401.

API clients are callers too, one column per scope (a client of the patient's organization holding only that
scope), plus `client_b`, a client of the other organization holding every scope. A route names the scope that
admits clients (`scope=`); every other client gets 403, and `client_b` 404 on anything about org A's patients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api.security.scopes import Scope
from tests.factories import ACTOR_NAMES, CLIENT_ACTORS, CLIENT_B, World
from tests.tokens import BAD_TOKENS

UNAUTHENTICATED = ("no_token", "expired", "other_key", "alg_none", "revoked_client")
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
OUTSIDERS = ("other_clinician", "other_patient_user", "admin_b", "clinician_b", CLIENT_B)


def clients(scope: Scope | None, ok: int) -> dict[str, int]:
    """The same-organization client columns: the holder of `scope` gets `ok`, the others 403."""
    return {name: ok if held == scope else 403 for name, held in CLIENT_ACTORS.items()}


def on_patient(ok: int, *, admin: int | None = None, prescriber: int | None = None, monitor: int | None = None,
               therapist: int | None = None, patient: int | None = None, scope: Scope | None = None,
               client: int | None = None) -> dict[str, int]:
    """Expected statuses of a route about world.patient: whoever may see the patient (its organization's admin,
    its care team's prescriber, monitor and therapist, the patient, and its organization's client holding
    `scope`) gets `ok` unless named otherwise; other clients of the organization 403; everyone else 404."""
    def given(status: int | None) -> int:
        return ok if status is None else status

    return dict(admin=given(admin), clinician=given(prescriber), monitor=given(monitor), therapist=given(therapist),
                patient_user=given(patient), **clients(scope, given(client)),
                **{outsider: 404 for outsider in OUTSIDERS})


def by_role(*, admin: int, clinician: int, patient: int, scope: Scope | None = None,
            client: int | None = None) -> dict[str, int]:
    """Expected statuses of a route about no one patient: the same for every caller of an account role, and for
    the clients of either organization holding `scope` (`client`, by default the admin's answer; 403 for the
    other clients)."""
    client = admin if client is None else client
    return dict(admin=admin, admin_b=admin, clinician=clinician, monitor=clinician, therapist=clinician,
                other_clinician=clinician, clinician_b=clinician, patient_user=patient, other_patient_user=patient,
                **clients(scope, client), **{CLIENT_B: client if scope is not None else 403})


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
    if caller == "revoked_client":
        return world.clients[caller].headers
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
    if expected == 403 and caller in CLIENT_ACTORS:
        # A scope that would admit it is named in the challenge (RFC 6750 3.1); a route no scope admits has none.
        challenge, code = response.headers.get("www-authenticate"), response.json()["code"]
        if any(route.expected[name] != 403 for name in CLIENT_ACTORS):
            assert code == "insufficient_scope"
        if code == "insufficient_scope":
            assert challenge.startswith('Bearer realm="calmtrack", error="insufficient_scope", scope="')
        else:
            assert challenge is None and code == "forbidden"
    return response
