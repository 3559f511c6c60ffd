"""The append-only audit log: every read and write of patient data, denied attempts included."""

import datetime as dt

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from models import AuditEvent


async def events(client, world, **params):
    response = await client.get("/v1/audit-events", params={"limit": 200, **params}, headers=world.admin.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_read_is_recorded_with_actor_patient_and_request_id(client, world):
    read = await client.get(f"/v1/patients/{world.patient.id}", headers=world.clinician.headers)
    [event] = [e for e in await events(client, world) if e["action"] == "patient.read"]
    assert event["actor_id"] == str(world.clinician.id)
    assert event["actor_type"] == "user"
    assert event["patient_id"] == str(world.patient.id)
    assert event["resource_type"] == "patient" and event["resource_id"] == str(world.patient.id)
    assert event["outcome"] == "success"
    assert event["request_id"] == read.headers["x-request-id"]
    assert dt.datetime.fromisoformat(event["at"]) <= dt.datetime.now(dt.UTC)


async def test_denied_attempt_is_recorded_although_the_answer_is_404(client, world):
    response = await client.get(f"/v1/patients/{world.patient.id}", headers=world.other_clinician.headers)
    assert response.status_code == 404
    [event] = await events(client, world, actor_id=str(world.other_clinician.id))
    assert (event["action"], event["outcome"], event["patient_id"]) == ("patient.read", "denied", str(world.patient.id))


async def test_cross_organization_attempt_is_recorded_in_the_attackers_organization(client, world):
    await client.get(f"/v1/patients/{world.patient.id}", headers=world.clinician_b.headers)
    response = await client.get("/v1/audit-events", params={"outcome": "denied"}, headers=world.admin_b.headers)
    assert [e["actor_id"] for e in response.json()["items"]] == [str(world.clinician_b.id)]
    assert [e for e in await events(client, world) if e["actor_id"] == str(world.clinician_b.id)] == []


async def test_writes_and_list_reads_are_recorded(client, world):
    created = (await client.post("/v1/patients", json={"full_name": "New One", "date_of_birth": "1970-01-01",
                                                       "timezone": "UTC"}, headers=world.clinician.headers)).json()
    await client.patch(f"/v1/patients/{created['id']}", json={"timezone": "Europe/Rome"},
                       headers=world.clinician.headers)
    await client.get("/v1/patients", headers=world.clinician.headers)
    by_patient = await events(client, world, patient_id=created["id"])
    assert sorted(e["action"] for e in by_patient) == ["patient.create", "patient.list", "patient.update"]
    listed = {e["patient_id"] for e in await events(client, world) if e["action"] == "patient.list"}
    assert listed == {created["id"], str(world.patient.id), str(world.fresh_patient.id)}


async def test_filters_and_pagination(client, world):
    for _ in range(5):
        await client.get(f"/v1/patients/{world.patient.id}", headers=world.clinician.headers)
    page = (await client.get("/v1/audit-events", params={"limit": 2, "actor_id": str(world.clinician.id)},
                             headers=world.admin.headers)).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (await client.get("/v1/audit-events", params={"limit": 200, "actor_id": str(world.clinician.id),
                                                         "cursor": page["next_cursor"]},
                             headers=world.admin.headers)).json()
    ids = [e["id"] for e in page["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 5
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert await events(client, world, **{"from": future}) == []
    assert len(await events(client, world, to=future, actor_id=str(world.clinician.id))) == 5


async def test_naive_time_filter_is_422(client, world):
    response = await client.get("/v1/audit-events", params={"from": "2026-01-01T00:00:00"}, headers=world.admin.headers)
    assert response.status_code == 422


@pytest.mark.parametrize("statement", [update(AuditEvent).values(action="tampered"), delete(AuditEvent)])
async def test_audit_log_is_append_only_in_the_database(app, client, world, statement):
    await client.get(f"/v1/patients/{world.patient.id}", headers=world.clinician.headers)
    async with app.state.sessions() as session:
        with pytest.raises(DBAPIError, match="append-only"):
            await session.exec(statement)
        await session.rollback()
        remaining = (await session.exec(text("SELECT count(*) FROM audit_event"))).scalar_one()
    assert remaining >= 1
