"""The `worsening` alert: a score worse than the chart plan's baseline by at least the clinically meaningful change
(GAD-7 4, PHQ-9 5) raises one high-priority alert with the score, once per plan and instrument until acknowledged.

world.patient lives in America/New_York; plans start on 2026-01-05 (tests/session_helpers.PLAN_START), so a score
recorded before 2026-01-06 00:00 local time is before the first dose while the plan has no signed session.
"""

import asyncio
import datetime as dt

import httpx
import pytest
from sqlalchemy import select

from models import Alert, OutboxEvent
from tests.conftest import ON_POSTGRES, new_id
from tests.session_helpers import DAY, active_plan, new_session, sign


def gad7(total: int, recorded_at: str, score_id: str | None = None) -> dict:
    items = [3] * (total // 3) + ([total % 3] if total % 3 else [])
    items += [0] * (7 - len(items))
    return {"id": score_id or new_id(), "instrument": "gad7", "items": items, "recorded_at": recorded_at}


def phq9(total: int, recorded_at: str) -> dict:
    # Item 9 stays 0: an endorsed item 9 raises its own urgent alert.
    items = [3] * (total // 3) + ([total % 3] if total % 3 else [])
    items += [0] * (9 - len(items))
    assert items[8] == 0
    return {"id": new_id(), "instrument": "phq9", "items": items, "recorded_at": recorded_at}


async def post(client, world, body: dict) -> dict:
    answer = await client.post("/v1/me/scores", json=body, headers=world.patient_user.headers)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


async def worsening_alerts(client, world, status: str | None = None) -> list[dict]:
    params = {"patient_id": str(world.patient.id), **({"status": status} if status else {})}
    answer = await client.get("/v1/alerts", params=params, headers=world.clinician.headers)
    assert answer.status_code == 200, answer.text
    return [alert for alert in answer.json()["items"] if alert["kind"].endswith("_worsening")]


async def acknowledge(client, world, alert_id: str) -> None:
    answer = await client.post(f"/v1/alerts/{alert_id}/acknowledge", json={"note": "called the patient"},
                               headers=world.clinician.headers)
    assert answer.status_code == 200, answer.text


BEFORE_START = "2026-01-03T09:00:00-05:00"
LATE_ON_START_DAY = "2026-01-05T23:30:00-05:00"  # still before the first dose: the start date's local day
AFTER_START = "2026-02-01T09:00:00-05:00"
LATER = "2026-02-08T09:00:00-05:00"
LATER_STILL = "2026-02-15T09:00:00-05:00"


async def test_a_score_worse_by_the_meaningful_change_raises_one_high_alert(client, world, app):
    await active_plan(client, world)
    await post(client, world, gad7(10, BEFORE_START))
    assert await worsening_alerts(client, world) == []
    score = await post(client, world, gad7(14, AFTER_START))

    [alert] = await worsening_alerts(client, world)
    assert (alert["kind"], alert["priority"], alert["status"]) == ("gad7_worsening", "high", "open")
    assert (alert["source_type"], alert["source_id"]) == ("score", score["id"])
    assert "14" in alert["message"] and "baseline of 10" in alert["message"]
    async with app.state.sessions() as session:
        events = (await session.exec(select(OutboxEvent.data).where(OutboxEvent.type == "alert.raised"))).all()
    assert [event[0]["alert_id"] for event in events] == [alert["id"]]


async def test_less_than_the_meaningful_change_raises_nothing(client, world):
    await active_plan(client, world)
    await post(client, world, gad7(10, BEFORE_START))
    await post(client, world, gad7(13, AFTER_START))
    await post(client, world, phq9(10, BEFORE_START))
    await post(client, world, phq9(14, AFTER_START))  # PHQ-9's meaningful change is 5
    assert await worsening_alerts(client, world) == []
    await post(client, world, phq9(15, LATER))
    assert [alert["kind"] for alert in await worsening_alerts(client, world)] == ["phq9_worsening"]


async def test_once_per_plan_and_instrument_until_acknowledged(client, world):
    await active_plan(client, world)
    await post(client, world, gad7(8, BEFORE_START))
    await post(client, world, gad7(12, AFTER_START))
    await post(client, world, gad7(15, LATER))  # worse again while the first alert is open: no second
    [first] = await worsening_alerts(client, world)

    await acknowledge(client, world, first["id"])
    await post(client, world, gad7(9, LATER_STILL))  # not worse: nothing
    assert len(await worsening_alerts(client, world, "open")) == 0
    await post(client, world, gad7(13, "2026-02-22T09:00:00-05:00"))
    [second] = await worsening_alerts(client, world, "open")
    assert second["id"] != first["id"]


async def test_the_baseline_is_the_last_score_before_the_first_dose(client, world):
    """Without a signed session the first dose is the end of the start date; once a session is signed, its start."""
    await active_plan(client, world)
    await post(client, world, gad7(2, BEFORE_START))
    await post(client, world, gad7(6, LATE_ON_START_DAY))  # the baseline: last before the end of the start day
    await post(client, world, gad7(9, AFTER_START))  # 6 → 9: not yet
    assert await worsening_alerts(client, world) == []

    signed = await new_session(client, world)
    assert (await sign(client, world.clinician, signed["id"], signed["etag"])).status_code == 200
    # The first dose is now the session (two days ago): the baseline becomes the 9 of 2026-02-01.
    day = dt.date.fromisoformat(DAY) + dt.timedelta(days=1)
    await post(client, world, gad7(12, f"{day}T09:00:00-05:00"))  # 9 → 12: not 4
    assert await worsening_alerts(client, world) == []
    await post(client, world, gad7(13, f"{day}T10:00:00-05:00"))  # 9 → 13
    assert [alert["kind"] for alert in await worsening_alerts(client, world)] == ["gad7_worsening"]


async def test_without_a_plan_or_before_the_baseline_nothing_is_judged(client, world):
    await post(client, world, gad7(3, BEFORE_START))
    await post(client, world, gad7(20, AFTER_START))  # no plan: no baseline to be worse than
    assert await worsening_alerts(client, world) == []

    await active_plan(client, world)
    await post(client, world, gad7(21, "2026-01-01T09:00:00-05:00"))  # older than the baseline (3): says nothing
    assert await worsening_alerts(client, world) == []


async def test_instruments_without_a_meaningful_change_are_not_judged(client, world):
    await active_plan(client, world)
    for instrument, low, high in (("gad2", [0, 0], [3, 3]), ("suds", [0], [100])):
        await post(client, world, {"id": new_id(), "instrument": instrument, "items": low,
                                   "recorded_at": BEFORE_START})
        await post(client, world, {"id": new_id(), "instrument": instrument, "items": high,
                                   "recorded_at": AFTER_START})
    assert await worsening_alerts(client, world) == []


async def test_a_batch_raises_one_alert_for_its_earliest_worse_score(client, world):
    await active_plan(client, world)
    await post(client, world, gad7(5, BEFORE_START))
    batch = [gad7(12, LATER), gad7(11, AFTER_START), gad7(6, LATER_STILL)]
    for _ in range(2):  # and a retried batch raises nothing more
        answer = await client.post("/v1/me/scores/batch", json={"scores": batch}, headers=world.patient_user.headers)
        assert answer.status_code == 200, answer.text
    [alert] = await worsening_alerts(client, world)
    assert alert["source_id"] == batch[1]["id"]


async def test_a_clinicians_in_clinic_score_raises_it_too(client, world):
    await active_plan(client, world)
    await post(client, world, gad7(4, BEFORE_START))
    answer = await client.post(f"/v1/patients/{world.patient.id}/scores", json=gad7(9, AFTER_START),
                               headers=world.clinician.headers)
    assert answer.status_code == 201, answer.text
    assert [alert["source_id"] for alert in await worsening_alerts(client, world)] == [answer.json()["id"]]


async def test_a_retracted_baseline_moves_the_baseline(client, world):
    await active_plan(client, world)
    await post(client, world, gad7(4, BEFORE_START))
    wrong = await post(client, world, gad7(15, LATE_ON_START_DAY))  # entered in error
    assert (await client.delete(f"/v1/me/scores/{wrong['id']}",
                                headers=world.patient_user.headers)).status_code == 204
    await post(client, world, gad7(8, AFTER_START))  # 4 → 8, judged against the live baseline
    assert len(await worsening_alerts(client, world)) == 1


@pytest.mark.skipif(not ON_POSTGRES, reason="concurrent writers need PostgreSQL")
async def test_concurrent_worse_scores_raise_one_alert(app, world):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://calmtrack.test") as client:
        await active_plan(client, world)
        await post(client, world, gad7(3, BEFORE_START))
        bodies = [gad7(10 + n, f"2026-02-0{n + 1}T09:00:00-05:00") for n in range(6)]
        answers = await asyncio.gather(*[
            client.post("/v1/me/scores", json=body, headers=world.patient_user.headers) for body in bodies])
        assert [answer.status_code for answer in answers] == [201] * 6
    async with app.state.sessions() as session:
        kinds = (await session.exec(select(Alert.kind).where(Alert.patient_id == world.patient.id))).scalars().all()
    assert kinds == ["gad7_worsening"]


@pytest.mark.skipif(not ON_POSTGRES, reason="the one-statement insert is PostgreSQL's")
async def test_the_one_statement_insert_stores_exactly_the_scores_the_rule_clears(app, client, world):
    """PostgreSQL's fast path declines (leaves to the ordinary path) a score the rule may judge worse, and stores
    every other one itself: otherwise an alert could be missed, or every score would pay for the slow path."""
    from api import outbox
    from api.audit import service as audit
    from api.scores import queries, service
    from api.scores.schemas import ScoreCreate
    from api.security.tokens import decode_access_token

    await active_plan(client, world)
    await post(client, world, gad7(10, BEFORE_START))
    caller = decode_access_token(app.state.settings, world.patient_user.token)
    cases = [(gad7(13, AFTER_START), True), (gad7(14, AFTER_START), False),
             (gad7(21, "2026-01-01T09:00:00-05:00"), True), (gad7(2, LATER), True), (phq9(24, LATER), True)]  # no PHQ-9 baseline yet: the score would be it

    async def fast_insert(body: dict) -> tuple[bool, bool]:
        score = service._new_score(ScoreCreate.model_validate(body), world.patient.id, caller,
                                   dt.datetime.now(dt.UTC))
        return await queries.insert_if_visible(
            app.state.engine, caller, score,
            audit.event_values(caller, "score.create", outcome=audit.SUCCESS, resource_type="score",
                               resource_id=score["id"], patient_id=world.patient.id, organization_id=None),
            outbox.event_values(caller.organization_id, "score.created", {"score_id": score["id"]}),
            service.worsening.worsening_parameters(score))

    for body, stored_fast in cases:
        assert await fast_insert(body) == (stored_fast, stored_fast), body
    # Once the plan's GAD-7 alert is open, a worse score raises no other: the fast path stores it, until the alert
    # is acknowledged.
    await post(client, world, gad7(15, LATER))
    [alert] = await worsening_alerts(client, world)
    assert await fast_insert(gad7(16, LATER_STILL)) == (True, True)
    await acknowledge(client, world, alert["id"])
    assert await fast_insert(gad7(16, LATER_STILL)) == (False, False)


async def test_the_baseline_at_an_ambiguous_local_midnight_is_the_rules(client, world, app):
    """A plan without a signed session begins treatment at the end of its start date. In Havana that end can come
    twice: on 1 November 2026 clocks go back from 01:00 to 00:00, so local midnight is 04:00 and again 05:00 UTC.
    The rule (Python's zoneinfo, as the chart) takes the first, PostgreSQL's AT TIME ZONE the second; a score
    between the two is after the first dose. PostgreSQL's one-statement insert must not judge by the later
    midnight: against the baseline of 5 (before 04:00) the 11 is worse, against the 16 (04:30) it is not. (The 16
    raises the first alert, acknowledged so that the 11 may raise another.)"""
    from sqlalchemy import update

    from models import Patient

    async with app.state.sessions() as session:
        await session.exec(update(Patient).where(Patient.id == world.patient.id).values(timezone="America/Havana"))
        await session.commit()
    await active_plan(client, world, start_date="2026-10-31")
    await post(client, world, gad7(5, "2026-10-31T12:00:00Z"))
    await post(client, world, gad7(16, "2026-11-01T04:30:00Z"))
    [first] = await worsening_alerts(client, world)
    await acknowledge(client, world, first["id"])
    await post(client, world, gad7(11, "2026-11-10T12:00:00Z"))
    [alert] = await worsening_alerts(client, world, status="open")
    assert "total 11" in alert["message"] and "baseline of 5" in alert["message"], alert["message"]
