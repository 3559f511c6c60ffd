"""The plan status lifecycle: the transition table, one active plan per patient (also under concurrency), the
suitability gate on activation with its override, closed records, and the derived treatment_resistant flag."""

import asyncio
import uuid

import pytest

from models import PlanRevision, TreatmentPlan
from tests.plan_helpers import count, new_plan, patch_plan, plan_body, rows, set_status

STATUSES = ("draft", "active", "paused", "completed", "discontinued")
# The contract's lifecycle table, written out rather than imported so that the test checks the code.
ALLOWED = {("draft", "active"), ("active", "paused"), ("paused", "active"), ("active", "completed"),
           ("active", "discontinued"), ("paused", "completed"), ("paused", "discontinued")}
# How to bring a new draft plan into each status.
PATH_TO = {"draft": [], "active": ["active"], "paused": ["active", "paused"], "completed": ["active", "completed"],
           "discontinued": ["active", "discontinued"]}


async def plan_in(client, world, status):
    plan = await new_plan(client, world)
    for step in PATH_TO[status]:
        assert (await set_status(client, world.clinician, plan["id"], step)).status_code == 200
    return plan


async def current(client, world, plan_id):
    return (await client.get(f"/v1/plans/{plan_id}", headers=world.clinician.headers)).json()


@pytest.mark.parametrize(("source", "target"), [(s, t) for s in STATUSES for t in STATUSES])
async def test_transition_table(client, world, source, target):
    plan = await plan_in(client, world, source)
    before = await current(client, world, plan["id"])
    response = await set_status(client, world.clinician, plan["id"], target, reason="per protocol")
    if (source, target) in ALLOWED:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == target
        assert response.json()["revision"] == before["revision"] + 1
        assert response.headers["etag"] == f'"{plan["id"]}-{before["revision"] + 1}"'
    else:
        assert response.status_code == 409, response.text
        assert response.json()["type"].endswith("conflict")
        assert await current(client, world, plan["id"]) == before


async def test_unknown_status_is_422(client, world):
    plan = await new_plan(client, world)
    response = await set_status(client, world.clinician, plan["id"], "archived")
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["body", "status"]


async def test_status_change_honours_an_if_match_when_sent(client, world):
    plan = await new_plan(client, world)
    patched = await patch_plan(client, world.clinician, plan["id"], {"title": "Changed"}, plan["etag"])
    url = f"/v1/plans/{plan['id']}/status"
    stale = await client.post(url, json={"status": "active"}, headers={**world.clinician.headers,
                                                                        "If-Match": plan["etag"]})
    assert stale.status_code == 412
    fresh = await client.post(url, json={"status": "active"}, headers={**world.clinician.headers,
                                                                        "If-Match": patched.headers["etag"]})
    assert fresh.status_code == 200 and fresh.json()["revision"] == 3


async def test_status_reason_is_in_the_history(client, world):
    plan = await plan_in(client, world, "active")
    await set_status(client, world.clinician, plan["id"], "paused", reason="Patient travelling for two weeks")
    history = (await client.get(f"/v1/plans/{plan['id']}/revisions", headers=world.clinician.headers)).json()
    latest = history["items"][0]
    assert latest["changes"] == [{"field": "status", "before": "active", "after": "paused"}]
    assert latest["reason"] == "Patient travelling for two weeks"


# --- closed records ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "expected"), [("draft", 200), ("active", 200), ("paused", 200),
                                                  ("completed", 409), ("discontinued", 409)])
async def test_completed_and_discontinued_plans_cannot_be_edited(client, world, status, expected):
    plan = await plan_in(client, world, status)
    etag = (await client.get(f"/v1/plans/{plan['id']}", headers=world.clinician.headers)).headers["etag"]
    response = await patch_plan(client, world.clinician, plan["id"], {"title": "Changed"}, etag)
    assert response.status_code == expected, response.text
    if expected == 409:
        assert (await current(client, world, plan["id"]))["title"] == plan["title"]


# --- one active plan per patient --------------------------------------------------------------------------------


async def test_a_second_active_plan_is_409(client, world):
    first = await plan_in(client, world, "active")
    second = await new_plan(client, world)
    response = await set_status(client, world.clinician, second["id"], "active")
    assert response.status_code == 409
    assert "active plan" in response.json()["detail"]
    assert (await current(client, world, second["id"]))["status"] == "draft"
    # A paused plan is not active: another may start, and then the paused one cannot resume.
    assert (await set_status(client, world.clinician, first["id"], "paused")).status_code == 200
    assert (await set_status(client, world.clinician, second["id"], "active")).status_code == 200
    assert (await set_status(client, world.clinician, first["id"], "active")).status_code == 409
    # Another patient's active plan is no obstacle.
    other = await new_plan(client, world, patient=world.fresh_patient)
    assert (await set_status(client, world.clinician, other["id"], "active")).status_code == 200


async def test_the_database_refuses_a_second_active_plan(app, client, world):
    """Not only the service: a direct write that skips it is refused too."""
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    await plan_in(client, world, "active")
    second = await new_plan(client, world)
    async with app.state.sessions() as session:
        with pytest.raises(IntegrityError):
            await session.exec(update(TreatmentPlan).where(TreatmentPlan.id == uuid.UUID(second["id"]))
                               .values(status="active"))


@pytest.mark.postgres_only
async def test_concurrent_activation_of_different_plans_succeeds_once(app, client, world):
    plans = [await new_plan(client, world) for _ in range(4)]
    answers = await asyncio.gather(*[set_status(client, world.clinician, p["id"], "active") for p in plans])
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
    assert await count(app, TreatmentPlan, TreatmentPlan.status == "active") == 1
    winner = next(p for p, a in zip(plans, answers, strict=True) if a.status_code == 200)
    assert await count(app, PlanRevision, PlanRevision.revision == 2) == 1
    assert (await current(client, world, winner["id"]))["status"] == "active"


async def test_concurrent_activation_of_one_plan_succeeds_once(app, client, world):
    plan = await new_plan(client, world)
    answers = await asyncio.gather(*[set_status(client, world.clinician, plan["id"], "active") for _ in range(3)])
    assert sorted(a.status_code for a in answers) == [200, 409, 409]
    assert await count(app, PlanRevision, PlanRevision.plan_id == uuid.UUID(plan["id"])) == 2


# --- the suitability gate ------------------------------------------------------------------------------------


async def test_activation_needs_a_suitability_assessment(client, world):
    plan = await new_plan(client, world, plan_body(suitability=None))
    response = await set_status(client, world.clinician, plan["id"], "active")
    assert response.status_code == 409 and "suitability" in response.json()["detail"]
    # Once assessed (a PATCH), it can be activated.
    patched = await patch_plan(client, world.clinician, plan["id"],
                               {"suitability": {"assessed_at": "2026-11-20", "contraindications": []}}, plan["etag"])
    assert patched.status_code == 200
    assert (await set_status(client, world.clinician, plan["id"], "active")).status_code == 200


async def test_contraindications_block_activation_without_an_override_reason(client, world, app):
    suitability = {"assessed_at": "2026-11-20", "contraindications": ["uncontrolled_hypertension", "pregnancy"],
                   "notes": "BP 170/105 at intake"}
    plan = await new_plan(client, world, plan_body(suitability=suitability))
    refused = await set_status(client, world.clinician, plan["id"], "active")
    assert refused.status_code == 409
    assert "uncontrolled_hypertension" in refused.json()["detail"] and "override_reason" in refused.json()["detail"]
    overridden = await set_status(client, world.clinician, plan["id"], "active",
                                  override_reason="Cardiology cleared; BP controlled on amlodipine",
                                  reason="Start induction")
    assert overridden.status_code == 200
    history = (await client.get(f"/v1/plans/{plan['id']}/revisions", headers=world.clinician.headers)).json()
    latest = history["items"][0]
    assert latest["override_reason"] == "Cardiology cleared; BP controlled on amlodipine"
    assert latest["overridden_contraindications"] == ["uncontrolled_hypertension", "pregnancy"]
    assert latest["reason"] == "Start induction" and latest["changed_by"] == str(world.clinician.id)
    # The patient sees neither the notes nor the override.
    mine = await client.get(f"/v1/plans/{plan['id']}", headers=world.patient_user.headers)
    assert "amlodipine" not in mine.text and "170/105" not in mine.text
    assert mine.json()["suitability"]["contraindications"] == ["uncontrolled_hypertension", "pregnancy"]


async def test_resuming_needs_the_override_again_when_contraindications_were_added(client, world):
    plan = await plan_in(client, world, "paused")
    etag = (await client.get(f"/v1/plans/{plan['id']}", headers=world.clinician.headers)).headers["etag"]
    suitability = {"assessed_at": "2026-11-20", "contraindications": ["active_substance_use"]}
    patched = await patch_plan(client, world.clinician, plan["id"], {"suitability": suitability}, etag)
    assert patched.status_code == 200
    assert (await set_status(client, world.clinician, plan["id"], "active")).status_code == 409
    resumed = await set_status(client, world.clinician, plan["id"], "active", override_reason="In remission, monitored")
    assert resumed.status_code == 200


@pytest.mark.parametrize("target", ["paused", "completed", "discontinued"])
async def test_an_override_reason_only_goes_with_activation(client, world, target):
    plan = await plan_in(client, world, "active")
    response = await set_status(client, world.clinician, plan["id"], target, override_reason="why not")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "override_reason"]


# --- treatment_resistant ---------------------------------------------------------------------------------------


def trial(outcome, adequate=True, kind="ssri"):
    return {"name": f"{kind} trial", "kind": kind, "adequate_trial": adequate, "outcome": outcome}


@pytest.mark.parametrize(("prior", "resistant"), [
    ([], False),
    ([trial("no_response")], False),
    ([trial("no_response"), trial("partial_response", kind="snri")], True),
    ([trial("no_response"), trial("no_response", kind="psychotherapy")], True),
    ([trial("no_response"), trial("no_response", adequate=False)], False),
    ([trial("no_response"), trial("response")], False),
    ([trial("no_response"), trial("remission")], False),
    ([trial("no_response"), trial("not_tolerated")], False),
    ([trial("not_tolerated"), trial("not_tolerated", kind="snri")], False),
    ([trial("partial_response"), trial("remission"), trial("no_response", kind="snri")], True),
])
async def test_treatment_resistant_is_derived_from_prior_treatments(client, world, prior, resistant):
    plan = await new_plan(client, world, plan_body(prior_treatments=prior))
    assert plan["treatment_resistant"] is resistant


@pytest.mark.parametrize(("prior", "resistant", "counted"), [
    # Failed benzodiazepine trials, however many, are not failed first-line treatment (issue 16).
    ([trial("no_response", kind="benzodiazepine"), trial("no_response", kind="benzodiazepine")], False, []),
    ([trial("no_response"), trial("no_response", kind="buspirone")], False, [0]),
    ([trial("no_response", kind="antipsychotic_augmentation"), trial("no_response", kind="other"),
      trial("partial_response", kind="tca"), trial("no_response", kind="ketamine")], False, []),
    ([trial("no_response", kind="benzodiazepine"), trial("no_response", kind="pregabalin"),
      trial("partial_response", kind="psychotherapy")], True, [1, 2]),
    ([trial("no_response", kind="snri"), trial("no_response", kind="ssri", adequate=False),
      trial("not_tolerated", kind="pregabalin"), trial("no_response", kind="ssri")], True, [0, 3]),
])
async def test_issue16_11_only_failed_first_line_trials_make_a_patient_treatment_resistant(client, world, prior,
                                                                                        resistant, counted):
    plan = await new_plan(client, world, plan_body(prior_treatments=prior))
    assert plan["treatment_resistant"] is resistant
    assert plan["treatment_resistance_trials"] == counted
    own = await client.get(f"/v1/plans/{plan['id']}", headers=world.patient_user.headers)
    assert (own.json()["treatment_resistant"], own.json()["treatment_resistance_trials"]) == (resistant, counted)


async def test_treatment_resistant_follows_a_patch(client, world):
    plan = await new_plan(client, world)
    assert plan["treatment_resistant"] is True
    patched = await patch_plan(client, world.clinician, plan["id"], {"prior_treatments": [trial("no_response")]},
                               plan["etag"])
    assert patched.json()["treatment_resistant"] is False


async def test_rows_keep_the_history_consistent(app, client, world):
    plan = await plan_in(client, world, "completed")
    stored = (await rows(app, TreatmentPlan, TreatmentPlan.id == uuid.UUID(plan["id"])))[0]
    revisions = await rows(app, PlanRevision, PlanRevision.plan_id == stored.id, order_by=PlanRevision.revision)
    assert [r.revision for r in revisions] == list(range(1, stored.revision + 1))
    assert [r.kind for r in revisions] == ["create", "status", "status"]
