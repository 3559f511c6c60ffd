"""Bad input never gets a 500: every error is problem+json with type, title, status and detail."""

import re

import pytest
from fastapi import APIRouter

PROBLEM = "application/problem+json"
VALID = {"full_name": "Alex Doe", "date_of_birth": "1988-02-14", "timezone": "America/New_York"}


def assert_problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys()
    assert body["status"] == status
    assert re.fullmatch(r"[a-z][a-z0-9_]*", body["code"]), body["code"]
    assert "Traceback" not in response.text
    return body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date_of_birth": 123}, "date_of_birth"),
        ({"date_of_birth": "1988-02-30"}, "date_of_birth"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": ["Alex"]}, "full_name"),
        ({"full_name": "Alex\x00Doe"}, "full_name"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "EST5EDT" * 20}, "timezone"),
        ({"email": "not-an-email"}, "email"),
        ({"external_id": "e" * 101}, "external_id"),
        ({"role": "admin"}, "role"),
        ({"organization_id": "00000000-0000-0000-0000-000000000000"}, "organization_id"),
    ],
)
async def test_invalid_patient_fields_are_422_naming_the_field(client, world, change, field):
    response = await client.post("/v1/patients", json={**VALID, **change}, headers=world.admin.headers)
    body = assert_problem(response, 422)
    assert ["body", field] in [error["loc"][:2] for error in body["errors"]]
    # The offending input is never echoed back (it may be PHI).
    assert "Alex\\u0000Doe" not in response.text and "input" not in body["errors"][0]


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b'"a string"', b"null", b'{"full_name": "\\ud800", "date_of_birth": "1988-02-14", '
                                                    b'"timezone": "UTC"}', b"\xff\xfe"],
)
async def test_malformed_bodies_are_422(client, world, raw):
    response = await client.post("/v1/patients", content=raw,
                                 headers={**world.admin.headers, "Content-Type": "application/json"})
    assert_problem(response, 422)


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g", "%00"])
async def test_malformed_path_ids_are_422(client, world, bad_id):
    response = await client.get(f"/v1/patients/{bad_id}", headers=world.admin.headers)
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["path", "patient_id"]


async def test_huge_declared_body_is_413(client, world):
    body = b'{"full_name": "' + b"x" * 2_000_000 + b'"}'
    response = await client.post("/v1/patients", content=body,
                                 headers={**world.admin.headers, "Content-Type": "application/json"})
    assert_problem(response, 413)


async def test_huge_streamed_body_is_413(client, world):
    async def chunks():
        yield b'{"full_name": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    response = await client.post("/v1/patients", content=chunks(),
                                 headers={**world.admin.headers, "Content-Type": "application/json"})
    assert_problem(response, 413)


async def test_unknown_route_and_method_are_problems(client, world):
    assert assert_problem(await client.get("/v1/nothing-here", headers=world.admin.headers), 404)["code"] == "not_found"
    assert assert_problem(await client.delete("/v1/users", headers=world.admin.headers), 405)["code"] == (
        "method_not_allowed")


async def test_problem_codes_are_stable_per_kind(client, world):
    missing = await client.get(f"/v1/patients/{world.patient_b.id}", headers=world.clinician.headers)
    assert assert_problem(missing, 404)["code"] == "not_found"
    invalid = await client.post("/v1/patients", json={**VALID, "timezone": "Mars/Olympus"}, headers=world.admin.headers)
    assert assert_problem(invalid, 422)["code"] == "validation_error"
    nul = await client.get("/v1/patients", params={"q": "a\x00b"}, headers=world.admin.headers)
    assert assert_problem(nul, 422)["code"] == "validation_error"
    forbidden = await client.get("/v1/users", headers=world.patient_user.headers)
    assert assert_problem(forbidden, 403)["code"] == "forbidden"
    too_large = await client.post("/v1/patients", content=b"x" * 2_000_000, headers={
        **world.admin.headers, "content-type": "application/json"})
    assert assert_problem(too_large, 413)["code"] == "payload_too_large"


async def test_unexpected_exception_is_a_bare_500_problem(app, client):
    router = APIRouter()

    @router.get("/v1/boom")
    async def boom():
        raise RuntimeError("secret internals: patient Pat Patient")

    app.include_router(router)
    response = await client.get("/v1/boom")
    body = assert_problem(response, 500)
    assert body["code"] == "internal_error"
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


async def test_request_id_is_echoed_or_generated(client):
    mine = await client.get("/healthz", headers={"X-Request-ID": "abc-123-def-456"})
    assert mine.headers["x-request-id"] == "abc-123-def-456"
    injected = await client.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert injected.headers["x-request-id"] != "bad id\nwith newline"
    assert len(injected.headers["x-request-id"]) == 32


async def test_phi_responses_are_not_cached(client, world):
    response = await client.get(f"/v1/patients/{world.patient.id}", headers=world.admin.headers)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_openapi_documents_problem_responses(client):
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/patients/{patient_id}"]["get"]
    assert operation["responses"]["404"]["content"] == {
        PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}


async def test_nul_characters_are_refused_everywhere(client, world):
    query = await client.get("/v1/patients", params={"q": "a\x00b"}, headers=world.admin.headers)
    assert_problem(query, 422)
    login = await client.post("/v1/auth/login", json={"email": "a\x00@example.com", "password": "whatever"})
    assert_problem(login, 422)
    nested_key = await client.patch(f"/v1/patients/{world.patient.id}", json={"full_name\x00": "x"},
                                    headers=world.admin.headers)
    assert_problem(nested_key, 422)


async def test_unknown_query_parameters_are_422_on_every_route(client, world):
    # A typo must not look like success: updatedSince would otherwise return the whole list, not a delta.
    typo = await client.get("/v1/me/scores", params={"updatedSince": "2026-01-01T00:00:00Z"},
                            headers=world.patient_user.headers)
    body = assert_problem(typo, 422)
    assert body["errors"] == [{"loc": ["query", "updatedSince"], "msg": "Unknown query parameter",
                               "type": "unknown_parameter"}]
    # Routes without any query parameter, and aliases (`from`) next to unknown names.
    assert_problem(await client.get("/v1/me", params={"verbose": "1"}, headers=world.patient_user.headers), 422)
    mixed = await client.get("/v1/me/scores", params={"from": "2026-01-01T00:00:00Z", "recorded_from": "x"},
                             headers=world.patient_user.headers)
    assert [e["loc"] for e in assert_problem(mixed, 422)["errors"]] == [["query", "recorded_from"]]
    # Declared ones, aliases included, still pass.
    fine = await client.get("/v1/me/scores", params={"from": "2026-01-01T00:00:00Z", "limit": "5"},
                            headers=world.patient_user.headers)
    assert fine.status_code == 200


def test_every_route_refuses_unknown_query_parameters():
    """The check is the routes' class (api/routing.py): a router created without it would accept typos."""
    from fastapi.routing import APIRoute

    from api.app import ROUTERS
    from api.routing import CheckedRoute

    routes = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    assert routes and all(isinstance(route, CheckedRoute) for route in routes), [
        route.path for route in routes if not isinstance(route, CheckedRoute)]


async def test_every_operation_documents_422(client):
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" in operation["responses"], (method, path)
