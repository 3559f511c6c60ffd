"""The append-only audit log: every read and write of patient data, denied attempts included."""

import datetime as dt
import uuid

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


async def _probes_of_org_a(client, world) -> dict[str, str]:
    """Another organization's clinician asks for org A's patient, plan, session, score and alert by id; for each,
    the same request with an id that exists nowhere."""
    from tests.plan_helpers import new_plan
    from tests.session_helpers import active_plan, create_session, session_body

    plan = await active_plan(client, world)
    session = await create_session(client, world.clinician, world.patient.id, session_body(world, plan["id"]))
    score_id = str(uuid.uuid4())
    await client.post("/v1/me/scores", headers=world.patient_user.headers, json={
        "id": score_id, "instrument": "phq9", "items": [1, 1, 1, 1, 1, 1, 1, 1, 2],
        "recorded_at": dt.datetime.now(dt.UTC).isoformat()})
    alerts = await client.get("/v1/alerts", headers=world.clinician.headers)
    paths = {
        "patient": "/v1/patients/{}",
        "plan": "/v1/plans/{}",
        "session": "/v1/sessions/{}",
        "score": "/v1/scores/{}",
        "alert_list": "/v1/alerts?patient_id={}",
    }
    ids = {"patient": world.patient.id, "plan": (await new_plan(client, world))["id"],
           "session": session.json()["id"], "score": score_id, "alert_list": world.patient.id}
    assert alerts.json()["items"], "the PHQ-9 item 9 answer raised an alert"
    for name, path in paths.items():
        for target in (ids[name], uuid.uuid4()):
            assert (await client.get(path.format(target), headers=world.clinician_b.headers)).status_code == 404
    ack = await client.post(f"/v1/alerts/{alerts.json()['items'][0]['id']}/acknowledge", json={"note": "x"},
                            headers=world.clinician_b.headers)
    assert ack.status_code == 404
    return {name: str(value) for name, value in ids.items()}


async def test_a_probe_of_another_organization_names_no_patient_in_the_probers_log(client, world):
    await _probes_of_org_a(client, world)
    probers = (await client.get("/v1/audit-events", params={"outcome": "denied", "limit": 200},
                                headers=world.admin_b.headers)).json()["items"]
    assert len(probers) == 11 and {e["actor_id"] for e in probers} == {str(world.clinician_b.id)}
    assert [e["patient_id"] for e in probers] == [None] * 11
    # A real resource and an id that exists nowhere leave the same trace: nothing tells which one existed.
    shape = lambda e: (e["action"], e["resource_type"], e["patient_id"], e["outcome"])  # noqa: E731
    by_action: dict[str, set] = {}
    for event in probers:
        by_action.setdefault(event["action"], set()).add(shape(event))
    assert all(len(shapes) == 1 for shapes in by_action.values())


async def test_a_probe_of_another_organization_shows_in_the_owners_log(client, world):
    ids = await _probes_of_org_a(client, world)
    seen = [e for e in await events(client, world, actor_id=str(world.clinician_b.id))]
    assert sorted((e["action"], e["resource_id"]) for e in seen) == sorted([
        ("patient.read", ids["patient"]), ("plan.read", ids["plan"]), ("session.read", ids["session"]),
        ("score.read", ids["score"]), ("alert.list", ids["patient"]),
        ("alert.acknowledge", next(e["resource_id"] for e in seen if e["action"] == "alert.acknowledge")),
    ])
    assert {(e["outcome"], e["patient_id"]) for e in seen} == {("denied", ids["patient"])}


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


def test_server_made_ids_are_uuid7_in_time_order():
    """Audit and outbox rows are appended in time order and keyed by RFC 9562 UUIDv7s: version 7, the RFC's
    variant, the Unix time in milliseconds first, so later ids sort after earlier ones (a millisecond apart)."""
    import time

    from models.base import uuid7

    before = time.time_ns() // 1_000_000
    ids = [uuid7() for _ in range(1000)]
    after = time.time_ns() // 1_000_000
    assert {i.version for i in ids} == {7} and {i.variant for i in ids} == {uuid.RFC_4122}
    assert all(before <= i.int >> 80 <= after for i in ids)
    assert len(set(ids)) == len(ids)
    time.sleep(0.002)
    assert uuid7() > max(ids)


def test_the_statements_counter_covers_every_page():
    """PostgreSQL numbers a statement's audit rows in the UUIDv7's 12-bit counter (api.audit.service): a page can
    never hold more rows than it counts."""
    from api.audit.service import MAX_ORDINAL
    from api.pagination import MAX_LIMIT

    assert MAX_LIMIT <= MAX_ORDINAL
