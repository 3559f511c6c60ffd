"""The worker's overdue sweep: one `assessment_overdue` alert per missed due date, more than 3 local days late,
never duplicated by repeated runs or by workers sweeping at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from api.cli import main
from api.schedules.service import sweep_overdue
from models import Alert, AuditEvent, OutboxEvent
from tests.plan_helpers import new_plan, plan_body, rows, set_status

ZONE = ZoneInfo("America/New_York")


def days_ago(days: int, now: dt.datetime | None = None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)


async def weekly_plan(client, world, patient=None) -> dict:
    start = (dt.datetime.now(ZONE).date() - dt.timedelta(days=40)).isoformat()
    plan = await new_plan(client, world, plan_body(start_date=start, goals=[],
                                                   assessments=[{"instrument": "gad7", "every_days": 7}]),
                          patient=patient)
    assert (await set_status(client, world.clinician, plan["id"], "active")).status_code == 200
    return plan


async def score_at(client, world, at: dt.datetime) -> None:
    response = await client.post(f"/v1/patients/{world.patient.id}/scores", headers=world.clinician.headers, json={
        "id": str(uuid.uuid4()), "instrument": "gad7", "items": [1] * 7, "recorded_at": at.isoformat()})
    assert response.status_code == 201, response.text


async def overdue_alerts(app) -> list[Alert]:
    return await rows(app, Alert, Alert.kind == "assessment_overdue")


async def test_eleven_days_since_a_weekly_score_raises_one_alert(client, world, app):
    plan = await weekly_plan(client, world)
    await score_at(client, world, days_ago(11))
    assert await sweep_overdue(app.state.sessions) == 1
    [alert] = await overdue_alerts(app)
    due = (days_ago(11).astimezone(ZONE).date() + dt.timedelta(days=7)).isoformat()
    assert (alert.patient_id, alert.priority, alert.status, alert.source_type) == (
        world.patient.id, "high", "open", "schedule")
    assert alert.message == f"GAD-7 was due on {due} and is 4 days overdue"
    [event] = await rows(app, OutboxEvent, OutboxEvent.type == "alert.raised")
    assert event.data == {"alert_id": str(alert.id), "patient_id": str(world.patient.id)}
    [audited] = await rows(app, AuditEvent, AuditEvent.action == "alert.raise")
    assert (audited.actor_type, audited.actor_id, audited.patient_id, audited.organization_id) == (
        "system", None, world.patient.id, world.org_a.id)
    listed = (await client.get("/v1/alerts", params={"patient_id": str(world.patient.id)},
                               headers=world.clinician.headers)).json()["items"]
    assert [a["kind"] for a in listed] == ["assessment_overdue"]
    assert plan["id"]


async def test_nine_days_raises_nothing(client, world, app):
    await weekly_plan(client, world)
    await score_at(client, world, days_ago(9))
    assert await sweep_overdue(app.state.sessions) == 0
    assert await overdue_alerts(app) == []


async def test_a_repeated_sweep_and_two_workers_at_once_raise_it_once(client, world, app):
    await weekly_plan(client, world)
    await score_at(client, world, days_ago(11))
    first = await asyncio.gather(sweep_overdue(app.state.sessions), sweep_overdue(app.state.sessions))
    again = await sweep_overdue(app.state.sessions)
    assert sorted(first) == [0, 1] and again == 0
    assert len(await overdue_alerts(app)) == 1
    assert len(await rows(app, OutboxEvent, OutboxEvent.type == "alert.raised")) == 1


async def test_each_missed_due_date_raises_its_own_alert(client, world, app):
    await weekly_plan(client, world)
    await score_at(client, world, days_ago(25))
    assert await sweep_overdue(app.state.sessions) == 1  # due 18 days ago
    # The patient answers late; the next due date is missed too.
    await score_at(client, world, days_ago(12))
    assert await sweep_overdue(app.state.sessions) == 1
    # Acknowledging does not bring the same missed date back.
    alerts = await overdue_alerts(app)
    assert len(alerts) == 2 and len({a.source_id for a in alerts}) == 2
    for alert in alerts:
        ack = await client.post(f"/v1/alerts/{alert.id}/acknowledge", json={"note": "called"},
                                headers=world.clinician.headers)
        assert ack.status_code == 200
    assert await sweep_overdue(app.state.sessions) == 0


async def test_no_scores_since_the_start_counts_from_the_start_date(client, world, app):
    await weekly_plan(client, world)  # started 40 days ago, nothing since
    assert await sweep_overdue(app.state.sessions) == 1
    [alert] = await overdue_alerts(app)
    assert "is 40 days overdue" in alert.message


@pytest.mark.parametrize("status", ["paused", "completed"])
async def test_only_active_plans_are_swept(client, world, app, status):
    plan = await weekly_plan(client, world)
    await set_status(client, world.clinician, plan["id"], status, reason="BP hold")
    assert await sweep_overdue(app.state.sessions) == 0


async def test_the_sweep_pages_through_many_plans(client, world, app, monkeypatch):
    from api.schedules import service
    from tests.factories import add_patient

    monkeypatch.setattr(service, "SWEEP_BATCH", 2)
    async with app.state.sessions() as session:
        patients = [await add_patient(session, world.org_a, f"Patient {i}", team=[world.clinician.user])
                    for i in range(5)]
        await session.commit()
    for patient in patients:
        await weekly_plan(client, world, patient=patient)
    assert await sweep_overdue(app.state.sessions) == 5


async def test_calmtrack_worker_once(client, world, app, database_url, monkeypatch, capsys):
    from api.settings import get_settings

    await weekly_plan(client, world)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ENVIRONMENT", "development")
    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(main, ["worker", "--once"]) == 0
        assert "overdue_sweep: 1" in capsys.readouterr().out
        assert await asyncio.to_thread(main, ["worker", "--once"]) == 0
        assert "overdue_sweep: 0" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()
    async with app.state.sessions() as session:
        assert len((await session.exec(select(Alert))).scalars().all()) == 1
