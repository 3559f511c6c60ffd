"""Idempotency-Key on creating POSTs (the contract's Conventions)."""

import asyncio

import pytest

BODY = {"full_name": "Alex Doe", "date_of_birth": "1988-02-14", "timezone": "America/New_York"}


def keyed(actor, key):
    return {**actor.headers, "Idempotency-Key": key}


async def patient_count(client, world):
    return len((await client.get("/v1/patients", headers=world.admin.headers)).json()["items"])


async def test_same_key_and_body_replays_the_first_answer(client, world):
    before = await patient_count(client, world)
    first = await client.post("/v1/patients", json=BODY, headers=keyed(world.clinician, "k-1"))
    second = await client.post("/v1/patients", json=BODY, headers=keyed(world.clinician, "k-1"))
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert await patient_count(client, world) == before + 1


async def test_same_key_with_another_body_is_422(client, world):
    await client.post("/v1/patients", json=BODY, headers=keyed(world.clinician, "k-2"))
    other = await client.post("/v1/patients", json={**BODY, "full_name": "Someone Else"},
                              headers=keyed(world.clinician, "k-2"))
    assert other.status_code == 422
    assert other.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_keys_are_scoped_to_the_caller(client, world):
    mine = await client.post("/v1/patients", json=BODY, headers=keyed(world.clinician, "shared"))
    theirs = await client.post("/v1/patients", json=BODY, headers=keyed(world.other_clinician, "shared"))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


async def test_a_failed_request_releases_its_key(client, world):
    bad = await client.post("/v1/users", json={"email": world.clinician.user.email, "full_name": "Dup",
                                               "role": "clinician", "password": "a long enough secret"},
                            headers=keyed(world.admin, "u-1"))
    assert bad.status_code == 409
    good = await client.post("/v1/users", json={"email": "fresh@example.com", "full_name": "Dup",
                                                "role": "clinician", "password": "a long enough secret"},
                             headers=keyed(world.admin, "u-1"))
    # The 409 stored nothing under the key, so a corrected request may use it.
    assert good.status_code == 201, good.text


async def test_no_key_means_no_replay(client, world):
    first = await client.post("/v1/patients", json=BODY, headers=world.clinician.headers)
    second = await client.post("/v1/patients", json=BODY, headers=world.clinician.headers)
    assert first.json()["id"] != second.json()["id"]


@pytest.mark.parametrize("key", [b"", b"x" * 256, b"has space", "ümlaut".encode("latin-1")])
async def test_malformed_keys_are_422(client, world, key):
    response = await client.post("/v1/patients", json=BODY, headers={**world.clinician.headers,
                                                                     "Idempotency-Key": key})
    assert response.status_code == 422


@pytest.mark.postgres_only
async def test_concurrent_requests_with_one_key_create_once(client, world):
    before = await patient_count(client, world)
    answers = await asyncio.gather(*[
        client.post("/v1/patients", json=BODY, headers=keyed(world.clinician, "race")) for _ in range(8)])
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {201, 409}
    assert statuses.count(201) >= 1
    for busy in (r for r in answers if r.status_code == 409):
        assert busy.json()["code"] == "request_in_progress" and busy.headers["retry-after"] == "1"
    assert len({r.json()["id"] for r in answers if r.status_code == 201}) == 1
    assert await patient_count(client, world) == before + 1


async def test_a_replay_after_losing_access_is_404_and_audited(client, world):
    from tests.plan_helpers import plan_body

    registered = await client.post("/v1/patients", json=BODY, headers=keyed(world.other_clinician, "reg"))
    patient_id = registered.json()["id"]
    url = f"/v1/patients/{patient_id}/plans"
    planned = await client.post(url, json=plan_body(), headers=keyed(world.other_clinician, "plan"))
    assert planned.status_code == 201
    # Still on the team: a replay answers the stored plan, and is recorded as a read of it.
    again = await client.post(url, json=plan_body(), headers=keyed(world.other_clinician, "plan"))
    assert again.status_code == 201 and again.json() == planned.json()
    # Taken off the care team, the clinician's old keys answer nothing about the patient.
    removed = await client.delete(f"/v1/patients/{patient_id}/care-team/{world.other_clinician.id}",
                                  headers=world.admin.headers)
    assert removed.status_code == 204
    for path, body, key in ((url, plan_body(), "plan"), ("/v1/patients", BODY, "reg")):
        replay = await client.post(path, json=body, headers=keyed(world.other_clinician, key))
        assert replay.status_code == 404, replay.text
        assert "Alex Doe" not in replay.text and "Ketamine" not in replay.text
    events = (await client.get("/v1/audit-events", params={"actor_id": str(world.other_clinician.id)},
                               headers=world.admin.headers)).json()["items"]
    reads = [(e["action"], e["outcome"]) for e in events if e["action"] in ("plan.read", "patient.read")]
    assert reads == [("patient.read", "denied"), ("plan.read", "denied"), ("plan.read", "success")]


async def test_a_replayed_session_is_a_read_of_it(client, world):
    from tests.session_helpers import active_plan, create_session, session_body

    plan = await active_plan(client, world)
    body = session_body(world, plan["id"])
    first = await create_session(client, world.monitor, world.patient.id, body, **{"Idempotency-Key": "s"})
    await client.delete(f"/v1/patients/{world.patient.id}/care-team/{world.monitor.id}", headers=world.admin.headers)
    replay = await create_session(client, world.monitor, world.patient.id, body, **{"Idempotency-Key": "s"})
    assert first.status_code == 201 and replay.status_code == 404
    assert "clinician-only" not in replay.text
