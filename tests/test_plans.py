"""Treatment plans: creation, validation, ETag/If-Match revisions, history, patient view, access, idempotency,
outbox and audit. The status lifecycle is in test_plans_lifecycle.py."""

import asyncio
import copy
import uuid

import pytest

from models import OutboxEvent, PlanRevision, TreatmentPlan
from api.security.scopes import Scope
from tests.matrix import Route, cell_id, cells, check_route, on_patient
from tests.plan_helpers import (
    EXAMPLE_PLAN,
    count,
    create_plan,
    new_plan,
    patch_plan,
    plan_body,
    rows,
    set_status,
)

# --- creating ------------------------------------------------------------------------------------------------


async def test_create_with_the_contract_example(client, world):
    response = await create_plan(client, world.clinician, world.patient.id)
    assert response.status_code == 201
    plan = response.json()
    assert plan["status"] == "draft" and plan["revision"] == 1
    assert response.headers["etag"] == f'"{plan["id"]}-1"'
    assert response.headers["location"] == f"/v1/plans/{plan['id']}"
    assert plan["patient_id"] == str(world.patient.id)
    for field, value in EXAMPLE_PLAN.items():
        assert plan[field] == value, field
    assert plan["treatment_resistant"] is True and plan["treatment_resistance_trials"] == [0, 1]
    assert plan["created_by"] == plan["updated_by"] == str(world.clinician.id)
    assert plan["created_at"] == plan["updated_at"] and plan["created_at"].endswith("Z")
    assert set(plan) == {*EXAMPLE_PLAN, "id", "patient_id", "status", "revision", "treatment_resistant",
                         "treatment_resistance_trials", "created_by", "created_at", "updated_by", "updated_at"}


async def test_optional_sections_default_to_empty(client, world):
    minimal = {key: EXAMPLE_PLAN[key] for key in ("title", "indication", "start_date", "protocol")}
    plan = (await create_plan(client, world.clinician, world.patient.id, minimal)).json()
    assert (plan["goals"], plan["adjunct_therapies"], plan["assessments"], plan["prior_treatments"]) == ([],) * 4
    assert plan["safety"] is None and plan["suitability"] is None and plan["treatment_resistant"] is False


async def test_esketamine_intranasal_in_mg_is_accepted(client, world):
    protocol = {"medication": "esketamine", "route": "intranasal", "dose": {"amount": 84, "unit": "mg"},
                "phases": [{"name": "induction", "sessions": 8, "interval_days": 3}]}
    response = await create_plan(client, world.clinician, world.patient.id, plan_body(protocol=protocol))
    assert response.status_code == 201, response.text
    assert response.json()["protocol"]["dose"] == {"amount": 84.0, "unit": "mg"}
    assert response.json()["protocol"]["infusion_minutes"] is None


# --- validation ----------------------------------------------------------------------------------------------


def changed(path, value):
    """The example body with the value at `path` (keys and list indexes) replaced; value None deletes it."""
    body = copy.deepcopy(EXAMPLE_PLAN)
    target = body
    for step in path[:-1]:
        target = target[step]
    if value is None:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


def esketamine(**dose):
    return {"medication": "esketamine", "route": "intranasal", "dose": {"amount": 56, "unit": "mg", **dose},
            "phases": [{"name": "induction", "sessions": 8, "interval_days": 3}]}


INVALID = [
    # (name, body, expected loc after "body")
    ("unknown medication", changed(["protocol", "medication"], "psilocybin"), ["protocol", "medication"]),
    ("unknown route", changed(["protocol", "route"], "rectal"), ["protocol", "route"]),
    ("esketamine iv", plan_body(protocol={**esketamine(), "route": "iv", "infusion_minutes": 40}),
     ["protocol", "route"]),
    ("esketamine in mg/kg", plan_body(protocol=esketamine(unit="mg/kg", amount=0.5)), ["protocol", "dose", "unit"]),
    ("esketamine above 84 mg", plan_body(protocol=esketamine(amount=112)), ["protocol", "dose", "amount"]),
    ("unknown unit", changed(["protocol", "dose", "unit"], "g"), ["protocol", "dose", "unit"]),
    ("zero dose", changed(["protocol", "dose", "amount"], 0), ["protocol", "dose", "amount"]),
    ("negative dose", changed(["protocol", "dose", "amount"], -0.5), ["protocol", "dose", "amount"]),
    ("dose as text", changed(["protocol", "dose", "amount"], "0.5"), ["protocol", "dose", "amount"]),
    ("mg/kg above 2", changed(["protocol", "dose", "amount"], 2.5), ["protocol", "dose", "amount"]),
    ("mg above 500", changed(["protocol", "dose"], {"amount": 600, "unit": "mg"}), ["protocol", "dose", "amount"]),
    ("no infusion time for iv", changed(["protocol", "infusion_minutes"], None), ["protocol", "infusion_minutes"]),
    ("infusion time for im", changed(["protocol", "route"], "im"), ["protocol", "infusion_minutes"]),
    ("zero infusion time", changed(["protocol", "infusion_minutes"], 0), ["protocol", "infusion_minutes"]),
    ("infusion over 4 h", changed(["protocol", "infusion_minutes"], 241), ["protocol", "infusion_minutes"]),
    ("no phases", changed(["protocol", "phases"], []), ["protocol", "phases"]),
    ("phase names repeat", changed(["protocol", "phases", 1, "name"], "Induction"), ["protocol", "phases", 1, "name"]),
    ("zero sessions", changed(["protocol", "phases", 0, "sessions"], 0), ["protocol", "phases", 0, "sessions"]),
    ("too many sessions", changed(["protocol", "phases", 0, "sessions"], 101), ["protocol", "phases", 0, "sessions"]),
    ("zero interval", changed(["protocol", "phases", 0, "interval_days"], 0),
     ["protocol", "phases", 0, "interval_days"]),
    ("interval over a year", changed(["protocol", "phases", 1, "interval_days"], 366),
     ["protocol", "phases", 1, "interval_days"]),
    ("unknown goal instrument", changed(["goals", 0, "instrument"], "bdi"), ["goals", 0, "instrument"]),
    ("target above range", changed(["goals", 0, "target_total"], 22), ["goals", 0, "target_total"]),
    ("target below range", changed(["goals", 0, "target_total"], -1), ["goals", 0, "target_total"]),
    ("goal date not a date", changed(["goals", 0, "by_date"], "next spring"), ["goals", 0, "by_date"]),
    ("goal before start", changed(["goals", 0, "by_date"], "2026-11-30"), ["goals", 0, "by_date"]),
    ("unknown adjunct", changed(["adjunct_therapies", 0, "kind"], "yoga"), ["adjunct_therapies", 0, "kind"]),
    ("unknown assessment instrument", changed(["assessments", 1, "instrument"], "bdi"),
     ["assessments", 1, "instrument"]),
    ("instrument scheduled twice", changed(["assessments", 1, "instrument"], "gad7"),
     ["assessments", 1, "instrument"]),
    ("assess every 0 days", changed(["assessments", 0, "every_days"], 0), ["assessments", 0, "every_days"]),
    ("assess less than quarterly", changed(["assessments", 0, "every_days"], 91), ["assessments", 0, "every_days"]),
    ("systolic too low", changed(["safety", "max_systolic"], 80), ["safety", "max_systolic"]),
    ("systolic too high", changed(["safety", "max_systolic"], 260), ["safety", "max_systolic"]),
    ("diastolic too low", changed(["safety", "max_diastolic"], 40), ["safety", "max_diastolic"]),
    ("diastolic too high", changed(["safety", "max_diastolic"], 151), ["safety", "max_diastolic"]),
    ("diastolic not below systolic", changed(["safety"], {"max_systolic": 120, "max_diastolic": 120}),
     ["safety", "max_diastolic"]),
    ("start date not a date", changed(["start_date"], "2026-13-01"), ["start_date"]),
    ("start date implausible", changed(["start_date"], "1999-12-31"), ["start_date"]),
    ("empty title", changed(["title"], "   "), ["title"]),
    ("long title", changed(["title"], "x" * 201), ["title"]),
    ("long indication", changed(["indication"], "x" * 1001), ["indication"]),
    ("no protocol", changed(["protocol"], None), ["protocol"]),
    ("unknown prior kind", changed(["prior_treatments", 0, "kind"], "homeopathy"), ["prior_treatments", 0, "kind"]),
    ("unknown outcome", changed(["prior_treatments", 1, "outcome"], "cured"), ["prior_treatments", 1, "outcome"]),
    ("adequate trial as text", changed(["prior_treatments", 0, "adequate_trial"], "yes"),
     ["prior_treatments", 0, "adequate_trial"]),
    ("unknown contraindication", changed(["suitability", "contraindications"], ["psychosis", "vertigo"]),
     ["suitability", "contraindications", 1]),
    ("contraindication twice", changed(["suitability", "contraindications"], ["pregnancy", "pregnancy"]),
     ["suitability", "contraindications", 1]),
    ("assessed in the future", changed(["suitability", "assessed_at"], "2099-01-01"), ["suitability", "assessed_at"]),
    ("status on create", plan_body(status="active"), ["status"]),
    ("derived field on create", plan_body(treatment_resistant=False), ["treatment_resistant"]),
    ("derived trials on create", plan_body(treatment_resistance_trials=[0]), ["treatment_resistance_trials"]),
    ("patient_id on create", plan_body(patient_id=str(uuid.uuid4())), ["patient_id"]),
    ("NUL in notes", changed(["suitability", "notes"], "a\x00b"), ["suitability"]),
]


@pytest.mark.parametrize(("name", "body", "loc"), INVALID, ids=[case[0] for case in INVALID])
async def test_invalid_plans_are_422_naming_the_field(client, world, app, name, body, loc):
    response = await create_plan(client, world.clinician, world.patient.id, body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["loc"] for error in problem["errors"]] == [["body", *loc]]
    assert problem["errors"][0]["msg"]
    assert "x" * 201 not in response.text and "vertigo" not in response.text  # never echoes the input
    assert await count(app, TreatmentPlan) == 0


async def test_every_contraindication_code_of_the_published_set_is_accepted(client, world):
    codes = ["uncontrolled_hypertension", "aneurysmal_vascular_disease", "arteriovenous_malformation",
             "intracerebral_hemorrhage_history", "psychosis", "active_substance_use", "pregnancy",
             "unstable_cardiovascular_disease", "severe_hepatic_impairment", "hypersensitivity"]
    body = changed(["suitability", "contraindications"], codes)
    response = await create_plan(client, world.clinician, world.patient.id, body)
    assert response.status_code == 201
    assert response.json()["suitability"]["contraindications"] == codes


# --- PATCH with If-Match ------------------------------------------------------------------------------------


async def test_patch_without_if_match_is_428_and_changes_nothing(client, world):
    plan = await new_plan(client, world)
    response = await patch_plan(client, world.clinician, plan["id"], {"title": "Changed"}, None)
    assert response.status_code == 428
    assert response.json()["type"].endswith("precondition-required")
    star = await patch_plan(client, world.clinician, plan["id"], {"title": "Changed"}, "*")
    assert star.status_code == 428
    current = await client.get(f"/v1/plans/{plan['id']}", headers=world.clinician.headers)
    assert current.json()["title"] == EXAMPLE_PLAN["title"] and current.json()["revision"] == 1


@pytest.mark.parametrize(("caller", "expected"), [("other_clinician", 404), ("clinician_b", 404),
                                                  ("patient_user", 403), ("admin", 403)])
async def test_access_is_decided_before_if_match(client, world, caller, expected):
    plan = await new_plan(client, world)
    response = await patch_plan(client, world.actor(caller), plan["id"], {"title": "Changed"}, None)
    assert response.status_code == expected


async def test_patch_increments_the_revision_and_the_etag(client, world):
    plan = await new_plan(client, world)
    response = await patch_plan(client, world.clinician, plan["id"], {"title": "Changed"}, plan["etag"])
    assert response.status_code == 200
    assert response.json()["revision"] == 2 and response.json()["title"] == "Changed"
    assert response.headers["etag"] == f'"{plan["id"]}-2"'
    read = await client.get(f"/v1/plans/{plan['id']}", headers=world.clinician.headers)
    assert read.headers["etag"] == response.headers["etag"] and read.json() == response.json()
    # The same field can change again with the new tag.
    again = await patch_plan(client, world.clinician, plan["id"], {"title": "Again"}, response.headers["etag"])
    assert again.json()["revision"] == 3


@pytest.mark.parametrize("tag", ['"{id}-0"', 'W/"{id}-1"', '"{other}-1"', "garbage", '"{id}-2"'])
async def test_stale_or_foreign_if_match_is_412(client, world, tag):
    plan = await new_plan(client, world)
    other = await new_plan(client, world)
    response = await patch_plan(client, world.clinician, plan["id"], {"title": "Changed"},
                                tag.format(id=plan["id"], other=other["id"]))
    assert response.status_code == 412
    assert response.json()["type"].endswith("precondition-failed")


async def test_if_match_may_list_several_tags(client, world):
    plan = await new_plan(client, world)
    response = await patch_plan(client, world.clinician, plan["id"], {"title": "Changed"},
                                f'"{plan["id"]}-0", {plan["etag"]}')
    assert response.status_code == 200


async def test_patch_is_a_merge_patch_per_top_level_field(client, world):
    plan = await new_plan(client, world)
    goals = [{"description": "Response", "instrument": "phq9", "target_total": 9, "by_date": None}]
    response = await patch_plan(client, world.clinician, plan["id"], {"goals": goals, "safety": None}, plan["etag"])
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["goals"] == goals and updated["safety"] is None
    assert updated["protocol"] == EXAMPLE_PLAN["protocol"] and updated["title"] == EXAMPLE_PLAN["title"]


@pytest.mark.parametrize(("patch", "loc"), [
    ({"status": "active"}, ["status"]),
    ({"revision": 7}, ["revision"]),
    ({"title": None}, ["title"]),
    ({"protocol": None}, ["protocol"]),
    ({"goals": None}, ["goals"]),
    ({"protocol": {**EXAMPLE_PLAN["protocol"], "dose": {"amount": 3, "unit": "mg/kg"}}},
     ["protocol", "dose", "amount"]),
    # Valid alone, but the merged plan would have its goal before its start.
    ({"start_date": "2027-04-01"}, ["goals", 0, "by_date"]),
])
async def test_invalid_patch_is_422_and_changes_nothing(client, world, patch, loc):
    plan = await new_plan(client, world)
    response = await patch_plan(client, world.clinician, plan["id"], patch, plan["etag"])
    assert response.status_code == 422, response.text
    assert [error["loc"] for error in response.json()["errors"]] == [["body", *loc]]
    current = await client.get(f"/v1/plans/{plan['id']}", headers=world.clinician.headers)
    assert current.json()["revision"] == 1


async def test_status_cannot_be_patched_and_says_where_to_change_it(client, world):
    plan = await new_plan(client, world)
    response = await patch_plan(client, world.clinician, plan["id"], {"status": "active"}, plan["etag"])
    assert "/status" in response.json()["errors"][0]["msg"]


async def test_a_patch_that_changes_nothing_keeps_the_revision(client, world, app):
    plan = await new_plan(client, world)
    response = await patch_plan(client, world.clinician, plan["id"], {"title": EXAMPLE_PLAN["title"]}, plan["etag"])
    assert response.status_code == 200 and response.json()["revision"] == 1
    assert response.headers["etag"] == plan["etag"]
    assert await count(app, PlanRevision) == 1


async def add_to_care_team(client, world, actor, role="prescriber"):
    response = await client.put(f"/v1/patients/{world.patient.id}/care-team/{actor.id}", json={"role": role},
                                headers=world.admin.headers)
    assert response.status_code == 201


async def test_two_clinicians_on_the_same_revision_one_wins_and_nothing_is_lost(client, world):
    await add_to_care_team(client, world, world.other_clinician)
    plan = await new_plan(client, world)
    first = await patch_plan(client, world.clinician, plan["id"], {"title": "Cleo's title"}, plan["etag"])
    second = await patch_plan(client, world.other_clinician, plan["id"],
                              {"safety": {"max_systolic": 150, "max_diastolic": 95}}, plan["etag"])
    assert (first.status_code, second.status_code) == (200, 412)
    current = (await client.get(f"/v1/plans/{plan['id']}", headers=world.clinician.headers))
    assert current.json()["title"] == "Cleo's title"
    assert current.json()["safety"] == EXAMPLE_PLAN["safety"]  # the loser's change was not applied
    # The loser reads the plan again and reapplies: both changes are kept.
    retry = await patch_plan(client, world.other_clinician, plan["id"],
                             {"safety": {"max_systolic": 150, "max_diastolic": 95}}, current.headers["etag"])
    assert retry.status_code == 200
    assert retry.json()["title"] == "Cleo's title" and retry.json()["safety"]["max_systolic"] == 150
    assert retry.json()["revision"] == 3


async def test_concurrent_patches_of_one_revision_one_wins(client, world, app):
    await add_to_care_team(client, world, world.other_clinician)
    plan = await new_plan(client, world)
    titles = {world.clinician.id: "Cleo's title", world.other_clinician.id: "Otto's title"}
    answers = await asyncio.gather(*[
        patch_plan(client, actor, plan["id"], {"title": titles[actor.id]}, plan["etag"])
        for actor in (world.clinician, world.other_clinician)
    ])
    assert sorted(a.status_code for a in answers) == [200, 412]
    winner = next(a for a in answers if a.status_code == 200).json()
    stored = (await client.get(f"/v1/plans/{plan['id']}", headers=world.clinician.headers)).json()
    assert stored["title"] == winner["title"] and stored["revision"] == 2
    revisions = await rows(app, PlanRevision, PlanRevision.plan_id == uuid.UUID(plan["id"]))
    assert sorted(r.revision for r in revisions) == [1, 2]
    assert titles[next(r for r in revisions if r.revision == 2).changed_by] == winner["title"]


# --- revision history ---------------------------------------------------------------------------------------


async def test_revisions_show_who_when_and_what_changed(client, world):
    await add_to_care_team(client, world, world.other_clinician)
    plan = await new_plan(client, world)
    two = await patch_plan(client, world.other_clinician, plan["id"],
                           {"title": "Changed", "safety": {"max_systolic": 150, "max_diastolic": 95}}, plan["etag"])
    await set_status(client, world.clinician, plan["id"], "active", reason="Induction starts Monday")
    response = await client.get(f"/v1/plans/{plan['id']}/revisions", headers=world.clinician.headers)
    assert response.status_code == 200
    page = response.json()
    assert page["next_cursor"] is None
    three, second, first = page["items"]
    assert (three["revision"], three["kind"], three["changed_by"]) == (3, "status", str(world.clinician.id))
    assert three["changes"] == [{"field": "status", "before": "draft", "after": "active"}]
    assert three["reason"] == "Induction starts Monday" and three["override_reason"] is None
    assert (second["revision"], second["kind"], second["changed_by"]) == (2, "update", str(world.other_clinician.id))
    assert second["changes"] == [
        {"field": "title", "before": EXAMPLE_PLAN["title"], "after": "Changed"},
        {"field": "safety", "before": EXAMPLE_PLAN["safety"], "after": {"max_systolic": 150, "max_diastolic": 95}},
    ]
    assert second["changed_at"] == two.json()["updated_at"]
    assert (first["revision"], first["kind"], first["changed_by"]) == (1, "create", str(world.clinician.id))
    assert {c["field"]: c["after"] for c in first["changes"]} == EXAMPLE_PLAN
    assert all(c["before"] is None for c in first["changes"])
    assert first["changed_at"] == plan["created_at"]


async def test_revisions_are_paginated_newest_first(client, world):
    plan = await new_plan(client, world)
    etag = plan["etag"]
    for n in range(4):
        etag = (await patch_plan(client, world.clinician, plan["id"], {"title": f"v{n}"}, etag)).headers["etag"]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/v1/plans/{plan['id']}/revisions", params=params,
                                 headers=world.clinician.headers)).json()
        seen += [item["revision"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [5, 4, 3, 2, 1]


# --- lists -----------------------------------------------------------------------------------------------------


async def test_list_is_newest_first_paginated_and_filters_by_status(client, world):
    plans = [await new_plan(client, world) for _ in range(3)]
    await set_status(client, world.clinician, plans[0]["id"], "active")
    await new_plan(client, world, patient=world.fresh_patient)  # another patient's plan is not listed
    url = f"/v1/patients/{world.patient.id}/plans"
    first = (await client.get(url, params={"limit": 2}, headers=world.clinician.headers)).json()
    second = (await client.get(url, params={"limit": 2, "cursor": first["next_cursor"]},
                               headers=world.clinician.headers)).json()
    assert [p["id"] for p in first["items"] + second["items"]] == [p["id"] for p in reversed(plans)]
    assert second["next_cursor"] is None
    active = (await client.get(url, params={"status": "active"}, headers=world.clinician.headers)).json()
    assert [p["id"] for p in active["items"]] == [plans[0]["id"]]
    drafts = (await client.get(url, params={"status": "draft"}, headers=world.clinician.headers)).json()
    assert {p["id"] for p in drafts["items"]} == {plans[1]["id"], plans[2]["id"]}
    bad = await client.get(url, params={"status": "archived"}, headers=world.clinician.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "status"]
    tampered = await client.get(url, params={"cursor": "bm9wZQ"}, headers=world.clinician.headers)
    assert tampered.status_code == 422


# --- the patient's view ------------------------------------------------------------------------------------


async def test_patient_reads_own_plans_without_clinician_only_fields(client, world):
    plan = await new_plan(client, world)
    clinician_view = (await client.get(f"/v1/plans/{plan['id']}", headers=world.clinician.headers)).json()
    assert clinician_view["suitability"]["notes"] == EXAMPLE_PLAN["suitability"]["notes"]
    response = await client.get(f"/v1/plans/{plan['id']}", headers=world.patient_user.headers)
    assert response.status_code == 200
    mine = response.json()
    assert mine["suitability"] == {"assessed_at": "2026-11-20", "contraindications": []}
    assert EXAMPLE_PLAN["suitability"]["notes"] not in response.text
    assert {k: v for k, v in mine.items() if k != "suitability"} == {
        k: v for k, v in clinician_view.items() if k != "suitability"}
    listed = await client.get(f"/v1/patients/{world.patient.id}/plans", headers=world.patient_user.headers)
    assert listed.json()["items"][0]["suitability"] == mine["suitability"]
    assert EXAMPLE_PLAN["suitability"]["notes"] not in listed.text


async def test_patient_may_not_read_the_revision_history(client, world):
    plan = await new_plan(client, world)
    response = await client.get(f"/v1/plans/{plan['id']}/revisions", headers=world.patient_user.headers)
    assert response.status_code == 403


# --- who may do what -------------------------------------------------------------------------------------------

# Target: world.patient. Admins read but do not write plans; on the care team only the prescriber writes them.
READ = on_patient(200, scope=Scope.plans_read)
WRITE = on_patient(200, admin=403, monitor=403, therapist=403, patient=403)
STAFF_READ = on_patient(200, patient=403, scope=Scope.plans_read)


def plan_path(suffix=""):
    return lambda w: f"/v1/plans/{w.extra['plan']['id']}{suffix}"


PLAN_ROUTES = [
    Route("create_plan", "POST", lambda w: f"/v1/patients/{w.patient.id}/plans",
          on_patient(201, admin=403, monitor=403, therapist=403, patient=403),
          json=lambda w: plan_body()),
    Route("list_plans", "GET", lambda w: f"/v1/patients/{w.patient.id}/plans", READ),
    Route("read_plan", "GET", plan_path(), READ),
    Route("patch_plan", "PATCH", plan_path(), WRITE, json=lambda w: {"title": "Changed"},
          headers=lambda w: {"If-Match": w.extra["plan"]["etag"]}),
    Route("plan_status", "POST", plan_path("/status"), WRITE, json=lambda w: {"status": "active"}),
    Route("plan_revisions", "GET", plan_path("/revisions"), STAFF_READ),
]


@pytest.mark.parametrize(("route", "caller"), cells(PLAN_ROUTES), ids=cell_id)
async def test_access(client, world, app, route, caller):
    world.extra["plan"] = await new_plan(client, world)
    plans_before = await count(app, TreatmentPlan)
    response = await check_route(client, world, route, caller)
    if response.status_code >= 400:
        assert world.extra["plan"]["title"] not in response.text
        assert await count(app, TreatmentPlan) == plans_before
        assert await count(app, PlanRevision) == plans_before  # no write got through


@pytest.mark.parametrize("caller", ["other_clinician", "other_patient_user", "admin_b", "clinician_b"])
async def test_an_invisible_plan_looks_exactly_like_a_missing_one(client, world, caller):
    plan = await new_plan(client, world)
    headers = world.actor(caller).headers
    strip = lambda r: {k: v for k, v in r.json().items() if k not in ("request_id", "instance")}  # noqa: E731
    for suffix in ("", "/revisions"):
        invisible = await client.get(f"/v1/plans/{plan['id']}{suffix}", headers=headers)
        missing = await client.get(f"/v1/plans/{uuid.uuid4()}{suffix}", headers=headers)
        assert invisible.status_code == missing.status_code == 404
        assert strip(invisible) == strip(missing)


async def test_unknown_patient_is_404(client, world):
    url = f"/v1/patients/{uuid.uuid4()}/plans"
    assert (await client.post(url, json=plan_body(), headers=world.clinician.headers)).status_code == 404
    assert (await client.get(url, headers=world.clinician.headers)).status_code == 404


# --- Idempotency-Key ----------------------------------------------------------------------------------------


async def test_idempotency_key_replays_the_plan_with_its_etag(client, world, app):
    first = await create_plan(client, world.clinician, world.patient.id, **{"Idempotency-Key": "plan-1"})
    again = await create_plan(client, world.clinician, world.patient.id, **{"Idempotency-Key": "plan-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"] == f'"{first.json()["id"]}-1"'
    assert again.headers["location"] == first.headers["location"]
    assert await count(app, TreatmentPlan) == 1
    other = await create_plan(client, world.clinician, world.patient.id, plan_body(title="Other"),
                              **{"Idempotency-Key": "plan-1"})
    assert other.status_code == 422 and other.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_a_failed_create_releases_its_idempotency_key(client, world, app):
    bad = await create_plan(client, world.clinician, world.fresh_patient.id, changed(["protocol", "phases"], []),
                            **{"Idempotency-Key": "plan-2"})
    assert bad.status_code == 422
    good = await create_plan(client, world.clinician, world.patient.id, **{"Idempotency-Key": "plan-2"})
    assert good.status_code == 201


# --- outbox and audit ----------------------------------------------------------------------------------------


async def test_every_change_writes_one_plan_updated_event_with_ids_only(client, world, app):
    plan = await new_plan(client, world)
    patched = await patch_plan(client, world.clinician, plan["id"], {"title": "Changed"}, plan["etag"])
    await patch_plan(client, world.clinician, plan["id"], {"title": "Stale"}, plan["etag"])  # 412: no event
    await patch_plan(client, world.clinician, plan["id"], {"title": "Changed"}, patched.headers["etag"])  # no-op
    await set_status(client, world.clinician, plan["id"], "completed")  # 409: no event
    await set_status(client, world.clinician, plan["id"], "active")
    events = await rows(app, OutboxEvent, order_by=OutboxEvent.created_at)
    expected = [(1, "draft"), (2, "draft"), (3, "active")]
    assert [(e.type, e.organization_id, e.data) for e in events] == [
        ("plan.updated", world.org_a.id,
         {"plan_id": plan["id"], "patient_id": str(world.patient.id), "revision": revision, "status": status})
        for revision, status in expected
    ]


async def audit_trail(client, world):
    response = await client.get("/v1/audit-events", params={"patient_id": str(world.patient.id), "limit": 200},
                                headers=world.admin.headers)
    return [(e["action"], e["outcome"], e["resource_type"], e["actor_id"]) for e in response.json()["items"]][::-1]


async def test_reads_and_writes_are_audited_including_denied_attempts(client, world):
    plan = await new_plan(client, world)
    await client.get(f"/v1/plans/{plan['id']}", headers=world.patient_user.headers)
    await client.get(f"/v1/patients/{world.patient.id}/plans", headers=world.clinician.headers)
    await patch_plan(client, world.clinician, plan["id"], {"title": "Changed"}, plan["etag"])
    await set_status(client, world.clinician, plan["id"], "active")
    await client.get(f"/v1/plans/{plan['id']}/revisions", headers=world.admin.headers)
    await client.get(f"/v1/plans/{plan['id']}", headers=world.other_clinician.headers)
    await patch_plan(client, world.admin, plan["id"], {"title": "Admin"}, plan["etag"])
    clinician, patient, admin, other = (str(a.id) for a in (world.clinician, world.patient_user, world.admin,
                                                             world.other_clinician))
    assert await audit_trail(client, world) == [
        ("plan.create", "success", "plan", clinician),
        ("plan.read", "success", "plan", patient),
        ("plan.list", "success", "plan", clinician),
        ("plan.update", "success", "plan", clinician),
        ("plan.status", "success", "plan", clinician),
        ("plan.revisions", "success", "plan", admin),
        ("plan.read", "denied", "plan", other),
        ("plan.update", "denied", "plan", admin),
    ]
