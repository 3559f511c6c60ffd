"""Clinician alerts: PHQ-9 item 9 above 0 and signed sessions' warnings raise them; the care team acknowledges."""

import uuid

import pytest
from sqlalchemy import select

from models import Alert, OutboxEvent
from tests.conftest import new_id
from api.security.scopes import Scope
from tests.matrix import Route, by_role, cell_id, cells, check_route, on_patient
from tests.session_helpers import at, new_session

RECORDED = "2026-11-20T08:30:00+01:00"


def phq9(item9: int, rest: int = 1, score_id: str | None = None) -> dict:
    return {"id": score_id or new_id(), "instrument": "phq9", "items": [rest] * 8 + [item9], "recorded_at": RECORDED}


async def post_score(client, world, body):
    response = await client.post("/v1/me/scores", json=body, headers=world.patient_user.headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def alerts(client, actor, **params):
    response = await client.get("/v1/alerts", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_phq9_item_9_above_zero_raises_an_urgent_alert_whatever_the_total(client, world):
    score = await post_score(client, world, phq9(item9=1, rest=0))
    assert score["total"] == 1 and score["severity"] == "minimal"
    [alert] = await alerts(client, world.clinician)
    assert alert["kind"] == "phq9_item9_positive" and alert["priority"] == "urgent" and alert["status"] == "open"
    assert (alert["source_type"], alert["source_id"], alert["patient_id"]) == ("score", score["id"],
                                                                               str(world.patient.id))
    assert alert["message"].startswith("PHQ-9 item 9 answered 1")
    assert [a["id"] for a in await alerts(client, world.admin)] == [alert["id"]]


async def test_no_alert_without_an_urgent_answer(client, world):
    await post_score(client, world, phq9(item9=0, rest=3))  # total 24, severe, but item 9 not endorsed
    await post_score(client, world, {"id": new_id(), "instrument": "gad7", "items": [3] * 7, "recorded_at": RECORDED})
    assert await alerts(client, world.clinician) == []


async def test_replays_and_retried_batches_raise_one_alert_per_score(client, world, app):
    body = phq9(item9=2)
    await post_score(client, world, body)
    await post_score(client, world, body)  # replay
    batch = {"scores": [phq9(item9=3), phq9(item9=1)]}
    for _ in range(2):
        response = await client.post("/v1/me/scores/batch", json=batch, headers=world.patient_user.headers)
        assert response.status_code == 200
    assert len(await alerts(client, world.clinician)) == 3
    async with app.state.sessions() as session:
        events = (await session.exec(select(OutboxEvent).where(OutboxEvent.type == "alert.raised"))).scalars().all()
    assert len(events) == 3
    assert all(set(event.data) == {"alert_id", "patient_id"} for event in events)  # ids, no clinical content


async def test_in_clinic_score_by_a_clinician_raises_it_too(client, world):
    response = await client.post(f"/v1/patients/{world.patient.id}/scores", json=phq9(item9=1),
                                 headers=world.clinician.headers)
    assert response.status_code == 201
    assert [a["kind"] for a in await alerts(client, world.clinician)] == ["phq9_item9_positive"]


async def sign(client, world, **overrides):
    draft = await new_session(client, world, **overrides)
    response = await client.post(f"/v1/sessions/{draft['id']}/sign", headers=world.clinician.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_signed_session_with_a_severe_adverse_event_raises_an_urgent_alert(client, world):
    signed = await sign(client, world, adverse_events=[
        {"kind": "hypertension", "severity": "severe", "action": "labetalol 10 mg IV"}])
    [alert] = await alerts(client, world.clinician)
    assert (alert["kind"], alert["priority"], alert["source_id"]) == ("severe_adverse_event", "urgent", signed["id"])


async def test_other_session_warnings_raise_one_high_alert(client, world):
    signed = await sign(client, world, dose_mg=40.0, vitals=[
        {"at": at("08:55"), "phase": "pre", "systolic": 170, "diastolic": 95, "heart_rate": 80,
         "spo2": 98}])
    [alert] = await alerts(client, world.clinician)
    assert (alert["kind"], alert["priority"], alert["source_id"]) == ("session_warning", "high", signed["id"])
    assert "above" in alert["message"] and "exceeds" in alert["message"]


async def test_a_session_without_warnings_raises_nothing(client, world):
    await sign(client, world)
    assert await alerts(client, world.clinician) == []


async def test_the_care_team_acknowledges_once(client, world):
    await post_score(client, world, phq9(item9=1))
    [alert] = await alerts(client, world.clinician, status="open")
    path = f"/v1/alerts/{alert['id']}/acknowledge"
    done = await client.post(path, json={"note": "Called the patient; safety plan reviewed"},
                             headers=world.clinician.headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "acknowledged"
    assert done.json()["acknowledged_by"] == str(world.clinician.id)
    again = await client.post(path, json={"note": "again"}, headers=world.clinician.headers)
    assert again.status_code == 409
    assert await alerts(client, world.clinician, status="open") == []
    assert [a["id"] for a in await alerts(client, world.clinician, status="acknowledged")] == [alert["id"]]


# Alerts are for staff: patient logins get 403 on every alert route. Any care-team clinician acknowledges.
ALERT_ROUTES = [
    Route("list_alerts", "GET", lambda w: "/v1/alerts",
          by_role(admin=200, clinician=200, patient=403, scope=Scope.alerts_read)),
    Route("list_patient_alerts", "GET", lambda w: f"/v1/alerts?patient_id={w.patient.id}",
          {**on_patient(200, patient=403, scope=Scope.alerts_read), "other_patient_user": 403}),
    Route("acknowledge_alert", "POST", lambda w: f"/v1/alerts/{w.extra['alert']['id']}/acknowledge",
          # Refused by role before the patient is looked at: patients and every API client alike (no scope).
          {**on_patient(200, admin=403, patient=403), "other_patient_user": 403, "client_b": 403},
          json=lambda w: {"note": "seen"}),
]


@pytest.mark.parametrize(("route", "caller"), cells(ALERT_ROUTES), ids=cell_id)
async def test_access(client, world, route, caller):
    await post_score(client, world, phq9(item9=1))
    [world.extra["alert"]] = await alerts(client, world.admin)
    response = await check_route(client, world, route, caller)
    if route.name == "list_patient_alerts" and response.status_code == 200:
        assert [a["id"] for a in response.json()["items"]] == [world.extra["alert"]["id"]]
    if route.name == "acknowledge_alert" and response.status_code != 200:
        assert (await alerts(client, world.admin))[0]["status"] == "open"


@pytest.mark.parametrize(("actor", "expected"), [
    ("clinician", 1), ("monitor", 1), ("therapist", 1), ("admin", 1), ("other_clinician", 0), ("clinician_b", 0),
    ("admin_b", 0),
])
async def test_who_sees_alerts(client, world, actor, expected):
    await post_score(client, world, phq9(item9=1))
    assert len(await alerts(client, world.actor(actor))) == expected


async def test_patients_do_not_list_alerts(client, world):
    response = await client.get("/v1/alerts", headers=world.patient_user.headers)
    assert response.status_code == 403


async def test_filtering_by_an_invisible_or_unknown_patient_is_404(client, world):
    for patient_id in (world.patient_b.id, uuid.uuid4()):
        response = await client.get("/v1/alerts", params={"patient_id": str(patient_id)},
                                    headers=world.clinician.headers)
        assert response.status_code == 404


async def test_filters_and_pages(client, world):
    for _ in range(3):
        await post_score(client, world, phq9(item9=1))
    await sign(client, world, adverse_events=[{"kind": "vomiting", "severity": "severe", "action": "observed"}])
    urgent = await alerts(client, world.clinician, priority="urgent", patient_id=str(world.patient.id))
    assert len(urgent) == 4
    first = (await client.get("/v1/alerts", params={"limit": 3}, headers=world.clinician.headers)).json()
    rest = (await client.get("/v1/alerts", params={"limit": 3, "cursor": first["next_cursor"]},
                             headers=world.clinician.headers)).json()
    ids = [a["id"] for a in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == 4 and rest["next_cursor"] is None


@pytest.mark.parametrize("note", ["", "   ", "x" * 2001])
async def test_an_acknowledgement_needs_a_note(client, world, note):
    await post_score(client, world, phq9(item9=1))
    [alert] = await alerts(client, world.clinician)
    response = await client.post(f"/v1/alerts/{alert['id']}/acknowledge", json={"note": note},
                                 headers=world.clinician.headers)
    assert response.status_code == 422


async def test_alerts_are_unique_per_source_and_kind_in_the_database(app, client, world):
    await post_score(client, world, phq9(item9=1))
    async with app.state.sessions() as session:
        assert len((await session.exec(select(Alert))).scalars().all()) == 1
