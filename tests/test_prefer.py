"""`Prefer: return=minimal` (RFC 7240) on creating POSTs, and `?return=minimal` on the phone's batch: ids and statuses
only, `Preference-Applied: return=minimal`, and replays shaped by the replaying request."""

import json

import pytest

from api.prefer import prefers_minimal
from tests.plan_helpers import create_plan, plan_body
from tests.session_helpers import add_addendum, create_session, current_plan, new_session, session_body, sign
from tests.test_errors import VALID, assert_problem
from tests.test_scores import body

MINIMAL = {"Prefer": "return=minimal"}


@pytest.mark.parametrize(("value", "minimal"), [
    ("return=minimal", True), ("RETURN=Minimal", True), ('return="minimal"', True), (" return = minimal ", True),
    ("respond-async, return=minimal; foo=bar, wait=10", True), ("return=minimal, return=representation", True),
    ("return=representation", False), ("return=representation, return=minimal", False), ("", False),
    (None, False), ("minimal", False), ("return", False), ("returns=minimal", False), ("return=minimalist", False),
    (",,;=,", False),
])
def test_prefer_is_parsed_as_rfc_7240_says(value, minimal):
    assert prefers_minimal(value) is minimal


def assert_minimal(response, status: int, keys: set[str]) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["preference-applied"] == "return=minimal"
    assert response.json().keys() == keys
    return response.json()


def assert_full(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert "preference-applied" not in response.headers
    return response.json()


async def test_a_score_answers_its_id_only_and_a_replay_follows_its_own_preference(client, world):
    entry = body(note="how it went")
    headers = world.patient_user.headers
    created = await client.post("/v1/me/scores", json=entry, headers={**headers, **MINIMAL})
    assert assert_minimal(created, 201, {"id"}) == {"id": entry["id"]}
    full = assert_full(await client.post("/v1/me/scores", json=entry, headers=headers), 200)
    assert (full["id"], full["total"], full["note"]) == (entry["id"], 11, "how it went")
    replayed = await client.post("/v1/me/scores", json=entry, headers={**headers, **MINIMAL})
    assert assert_minimal(replayed, 200, {"id"}) == {"id": entry["id"]}
    explicit = await client.post("/v1/me/scores", json=entry, headers={**headers, "Prefer": "return=representation"})
    assert assert_full(explicit, 200)["total"] == 11


async def test_a_clinicians_score_answers_its_id_only(client, world):
    entry = body()
    created = await client.post(f"/v1/patients/{world.patient.id}/scores", json=entry,
                                headers={**world.clinician.headers, **MINIMAL})
    assert assert_minimal(created, 201, {"id"}) == {"id": entry["id"]}


async def test_problems_are_problems_whatever_the_preference(client, world):
    refused = await client.post("/v1/me/scores", json=body(items=[9]), headers={**world.patient_user.headers, **MINIMAL})
    assert_problem(refused, 422)
    assert "preference-applied" not in refused.headers


async def test_the_batch_answers_ids_and_statuses_and_keeps_problems(client, world):
    headers = world.patient_user.headers
    taken = body()
    assert (await client.post("/v1/me/scores", json=taken, headers=headers)).status_code == 201
    replay = body()
    assert (await client.post("/v1/me/scores", json=replay, headers=headers)).status_code == 201
    fresh = [body(note="x" * 200) for _ in range(40)]
    entries = [*fresh, replay, {**taken, "items": [0] * 7}, {**body(), "items": [9]}]
    full = assert_full(await client.post("/v1/me/scores/batch", json={"scores": entries}, headers=headers), 200)
    minimal = await client.post("/v1/me/scores/batch", params={"return": "minimal"},
                                json={"scores": [*[body(note="x" * 200) for _ in range(40)], replay,
                                                 {**taken, "items": [0] * 7}, {**body(), "items": [9]}]},
                                headers=headers)
    assert minimal.status_code == 200 and minimal.headers["preference-applied"] == "return=minimal"
    results = minimal.json()["results"]
    assert [r["status"] for r in results] == [201] * 40 + [200, 409, 422]
    assert all(r.keys() == {"id", "status"} for r in results[:41])
    assert results[41]["problem"]["code"] == "score_id_taken"
    assert results[42]["problem"]["code"] == "validation_error" and results[42]["id"]
    # The full answer echoes each score; the minimal one is a fraction of it.
    assert all("score" in r for r in full["results"][:41])
    assert len(minimal.content) * 5 < len(json.dumps(full))


async def test_the_batch_takes_the_preference_from_the_header_too_and_the_query_wins(client, world):
    headers = world.patient_user.headers
    entries = [body(), body()]
    by_header = await client.post("/v1/me/scores/batch", json={"scores": entries}, headers={**headers, **MINIMAL})
    assert by_header.headers["preference-applied"] == "return=minimal"
    assert by_header.json() == {"results": [{"id": e["id"], "status": 201} for e in entries]}
    # Sent again: replays, shaped as this request asks.
    overridden = await client.post("/v1/me/scores/batch", params={"return": "representation"},
                                   json={"scores": entries}, headers={**headers, **MINIMAL})
    results = assert_full(overridden, 200)["results"]
    assert [(r["status"], r["score"]["total"]) for r in results] == [(200, 11), (200, 11)]


@pytest.mark.parametrize("value", ["Minimal", "none", "", "minimal,representation"])
async def test_an_unknown_return_value_is_422(client, world, value):
    answer = await client.post("/v1/me/scores/batch", params={"return": value}, json={"scores": [body()]},
                               headers=world.patient_user.headers)
    assert assert_problem(answer, 422)["errors"][0]["loc"] == ["query", "return"]


async def test_a_plan_answers_id_and_status_and_idempotent_replays_follow_the_replaying_request(client, world):
    key = {"Idempotency-Key": "plan-minimal-1"}
    created = await create_plan(client, world.clinician, world.patient.id, **key, **MINIMAL)
    plan = assert_minimal(created, 201, {"id", "status"})
    assert plan["status"] == "draft"
    assert created.headers["etag"] == f'"{plan["id"]}-1"' and created.headers["location"] == f"/v1/plans/{plan['id']}"
    replayed_full = assert_full(await create_plan(client, world.clinician, world.patient.id, **key), 201)
    assert (replayed_full["id"], replayed_full["revision"], replayed_full["title"]) == (plan["id"], 1,
                                                                                       plan_body()["title"])
    assert "protocol" in replayed_full
    replayed_minimal = await create_plan(client, world.clinician, world.patient.id, **key, **MINIMAL)
    assert assert_minimal(replayed_minimal, 201, {"id", "status"}) == plan
    assert replayed_minimal.headers["etag"] == created.headers["etag"]


async def test_a_session_and_an_addendum_answer_minimally(client, world):
    plan = await current_plan(client, world)
    created = await create_session(client, world.clinician, world.patient.id, session_body(world, plan["id"]),
                                   **MINIMAL, **{"Idempotency-Key": "session-minimal-1"})
    assert assert_minimal(created, 201, {"id", "status"})["status"] == "draft"
    replayed = await create_session(client, world.clinician, world.patient.id, session_body(world, plan["id"]),
                                    **{"Idempotency-Key": "session-minimal-1"})
    assert "warnings" in assert_full(replayed, 201)
    signed = await new_session(client, world)
    assert (await sign(client, world.clinician, signed["id"])).status_code == 200
    addendum = await add_addendum(client, world.clinician, signed["id"], "Called the next day: well.", **MINIMAL)
    assert assert_minimal(addendum, 201, {"id"})


async def test_users_and_patients_answer_their_id(client, world):
    patient = await client.post("/v1/patients", json=VALID, headers={**world.admin.headers, **MINIMAL})
    patient_id = assert_minimal(patient, 201, {"id"})["id"]
    read = await client.get(f"/v1/patients/{patient_id}", headers=world.admin.headers)
    assert read.status_code == 200 and read.json()["full_name"] == VALID["full_name"]
    user = await client.post("/v1/users", headers={**world.admin.headers, **MINIMAL}, json={
        "email": "new.clinician@example.com", "full_name": "Dr. New", "role": "clinician",
        "password": "clinician passphrase"})
    assert_minimal(user, 201, {"id"})


async def test_answers_whose_content_is_the_point_ignore_the_preference(client, world):
    code = await client.post(f"/v1/patients/{world.fresh_patient.id}/enrollment-codes",
                             headers={**world.clinician.headers, **MINIMAL})
    assert code.status_code == 201 and "code" in assert_full(code, 201)


def test_every_minimal_shape_is_declared_next_to_the_full_one():
    from tests.conftest import openapi_document

    document = openapi_document()
    honouring = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not any(p["name"] == "Prefer" for p in operation.get("parameters", [])):
                continue
            honouring.append((method, path))
            for status in ("200", "201"):
                if status not in operation["responses"]:
                    continue
                response = operation["responses"][status]
                shapes = [ref["$ref"].rsplit("/", 1)[1]
                          for ref in response["content"]["application/json"]["schema"]["anyOf"]]
                assert len(shapes) == 2 and shapes[1].endswith("Minimal") or shapes[1] == "BatchMinimalAnswer", shapes
                assert "Preference-Applied" in response["headers"]
    assert sorted(honouring) == sorted([
        ("post", "/v1/me/scores"), ("post", "/v1/me/scores/batch"), ("post", "/v1/patients/{patient_id}/scores"),
        ("post", "/v1/patients/{patient_id}/plans"), ("post", "/v1/patients/{patient_id}/sessions"),
        ("post", "/v1/sessions/{session_id}/addenda"), ("post", "/v1/patients"), ("post", "/v1/users"),
    ])


async def test_a_prefer_header_over_1024_characters_is_422(client, world):
    """The header is parsed by its own validator (api/prefer.py), which keeps the documented maxLength."""
    padded = "return=minimal, " + "x" * (1024 - len("return=minimal, "))
    accepted = await client.post("/v1/me/scores", json=body(), headers={**world.patient_user.headers, "Prefer": padded})
    assert accepted.status_code == 201 and accepted.headers["preference-applied"] == "return=minimal"
    refused = await client.post("/v1/me/scores", json=body(),
                                headers={**world.patient_user.headers, "Prefer": padded + "x"})
    [error] = assert_problem(refused, 422)["errors"]
    assert error["loc"] == ["header", "Prefer"] and error["type"] == "string_too_long"
