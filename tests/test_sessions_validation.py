"""Session validation: every range and cross-field rule answers 422 at the field to change; the supervisor must be
an active clinician on the care team; the plan link must be the patient's active plan, or explicitly none with a
reason."""

import copy
import uuid
from types import SimpleNamespace

import pytest

from models import CareTeamMember, CareTeamRole, DosingSession, Role
from tests.factories import add_user
from tests.plan_helpers import count, new_plan, set_status
from tests.session_helpers import active_plan, at, create_session, example_session, new_session, patch_session

# Bodies are built at import time with placeholders; each test puts in its world's supervisor and active plan.
PLAN_ID = "00000000-0000-4000-8000-000000000001"
PLACEHOLDER_WORLD = SimpleNamespace(clinician=SimpleNamespace(id="supervisor"))
DELETE = object()


def changed(path, value):
    """The example body with the value at `path` replaced; the sentinel DELETE removes it."""
    body = example_session(PLACEHOLDER_WORLD, PLAN_ID)
    target = body
    for step in path[:-1]:
        target = target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


VITAL = ["vitals", 0]


def vital(**fields):
    return [{"at": at("08:55"), "phase": "pre", "systolic": 128, "diastolic": 82, "heart_rate": 74, "spo2": 98,
             **fields}]


def event(**fields):
    return [{"kind": "nausea", "severity": "mild", "action": "ondansetron 4 mg", **fields}]


INVALID = [
    # (name, body, expected loc after "body")
    ("no started_at", changed(["started_at"], DELETE), ["started_at"]),
    ("started_at without offset", changed(["started_at"], at("09:00", "")), ["started_at"]),
    ("started_at not an instant", changed(["started_at"], "yesterday"), ["started_at"]),
    ("started_at in the future", changed(["started_at"], "2999-01-01T09:00:00Z"), ["started_at"]),
    ("started_at before 2000", changed(["started_at"], "1999-12-31T09:00:00Z"), ["started_at"]),
    ("ended_at before started_at", changed(["ended_at"], at("08:59")), ["ended_at"]),
    ("ended_at equal to started_at", changed(["ended_at"], at("09:00")), ["ended_at"]),
    ("session over 12 h", changed(["ended_at"], at("21:01")), ["ended_at"]),
    ("ended_at in the future", changed(["ended_at"], "2999-01-01T09:00:00Z"), ["ended_at"]),
    ("unknown medication", changed(["medication"], "psilocybin"), ["medication"]),
    ("unknown route", changed(["route"], "rectal"), ["route"]),
    ("esketamine iv", changed(["medication"], "esketamine"), ["route"]),
    ("zero dose", changed(["dose_mg"], 0), ["dose_mg"]),
    ("negative dose", changed(["dose_mg"], -1.0), ["dose_mg"]),
    ("dose over 500 mg", changed(["dose_mg"], 500.5), ["dose_mg"]),
    ("dose as text", changed(["dose_mg"], "35"), ["dose_mg"]),
    ("no dose", changed(["dose_mg"], DELETE), ["dose_mg"]),
    ("weight under 20 kg", changed(["weight_kg"], 19.9), ["weight_kg"]),
    ("weight over 300 kg", changed(["weight_kg"], 300.1), ["weight_kg"]),
    ("systolic under 50", changed(["vitals"], vital(systolic=49, diastolic=30)), [*VITAL, "systolic"]),
    ("systolic over 300", changed(["vitals"], vital(systolic=301)), [*VITAL, "systolic"]),
    ("diastolic under 20", changed(["vitals"], vital(diastolic=19)), [*VITAL, "diastolic"]),
    ("diastolic over 200", changed(["vitals"], vital(systolic=260, diastolic=201)), [*VITAL, "diastolic"]),
    ("diastolic not below systolic", changed(["vitals"], vital(systolic=90, diastolic=90)), [*VITAL, "diastolic"]),
    ("heart rate under 20", changed(["vitals"], vital(heart_rate=19)), [*VITAL, "heart_rate"]),
    ("heart rate over 250", changed(["vitals"], vital(heart_rate=251)), [*VITAL, "heart_rate"]),
    ("SpO2 under 50", changed(["vitals"], vital(spo2=49)), [*VITAL, "spo2"]),
    ("SpO2 over 100", changed(["vitals"], vital(spo2=101)), [*VITAL, "spo2"]),
    ("SpO2 as a fraction", changed(["vitals"], vital(spo2=97.5)), [*VITAL, "spo2"]),
    ("respiratory rate under 4", changed(["vitals"], vital(respiratory_rate=3)), [*VITAL, "respiratory_rate"]),
    ("respiratory rate over 60", changed(["vitals"], vital(respiratory_rate=61)), [*VITAL, "respiratory_rate"]),
    ("unknown phase", changed(["vitals"], vital(phase="after")), [*VITAL, "phase"]),
    ("vital without heart rate", changed(["vitals"], [{k: v for k, v in vital()[0].items() if k != "heart_rate"}]),
     [*VITAL, "heart_rate"]),
    ("vital over 2 h before start", changed(["vitals"], vital(at=at("06:59"))), [*VITAL, "at"]),
    ("vital over 2 h after end", changed(["vitals"], vital(at=at("13:11"))), [*VITAL, "at"]),
    ("vital without offset", changed(["vitals"], vital(at=at("08:55", ""))), [*VITAL, "at"]),
    ("second vital out of window", changed(["vitals"], [*vital(), *vital(at=at("06:00"))]), ["vitals", 1, "at"]),
    ("CADSS under 0", changed(["dissociation_cadss"], -1), ["dissociation_cadss"]),
    ("CADSS over 92", changed(["dissociation_cadss"], 93), ["dissociation_cadss"]),
    ("CADSS as a float", changed(["dissociation_cadss"], 18.0), ["dissociation_cadss"]),
    ("MOAA/S under 0", changed(["sedation_moaas"], -1), ["sedation_moaas"]),
    ("MOAA/S over 5", changed(["sedation_moaas"], 6), ["sedation_moaas"]),
    ("MOAA/S as text", changed(["sedation_moaas"], "5"), ["sedation_moaas"]),
    ("pre SUDS under 0", changed(["pre_suds"], -1), ["pre_suds"]),
    ("pre SUDS over 100", changed(["pre_suds"], 101), ["pre_suds"]),
    ("post SUDS over 100", changed(["post_suds"], 101), ["post_suds"]),
    ("post SUDS as a bool", changed(["post_suds"], True), ["post_suds"]),
    ("unknown adverse event", changed(["adverse_events"], event(kind="euphoria")), ["adverse_events", 0, "kind"]),
    ("unknown severity", changed(["adverse_events"], event(severity="fatal")), ["adverse_events", 0, "severity"]),
    ("no action", changed(["adverse_events"], [{"kind": "nausea", "severity": "mild"}]),
     ["adverse_events", 0, "action"]),
    ("blank action", changed(["adverse_events"], event(action="  ")), ["adverse_events", 0, "action"]),
    ("other without description", changed(["adverse_events"], event(kind="other")),
     ["adverse_events", 0, "description"]),
    ("adverse event out of window", changed(["adverse_events"], event(at=at("15:00"))), ["adverse_events", 0, "at"]),
    ("discharge before start", changed(["discharge", "at"], at("08:59")), ["discharge", "at"]),
    ("discharge long after end", changed(["discharge", "at"], at("13:11")), ["discharge", "at"]),
    ("discharge without criteria", changed(["discharge"], {"at": at("11:10")}), ["discharge", "criteria_met"]),
    ("criteria_met as text", changed(["discharge", "criteria_met"], "yes"), ["discharge", "criteria_met"]),
    ("long notes", changed(["notes"], "x" * 10_001), ["notes"]),
    ("NUL in notes", changed(["notes"], "a\x00b"), ["notes"]),
    ("plan_id not sent", changed(["plan_id"], DELETE), ["plan_id"]),
    ("plan_id not a uuid", changed(["plan_id"], "plan-1"), ["plan_id"]),
    ("supervisor not a uuid", changed(["supervising_clinician_id"], "dr-who"), ["supervising_clinician_id"]),
    ("unplanned without reason", changed(["plan_id"], None), ["unplanned_reason"]),
    ("status on create", {**changed(["notes"], "n"), "status": "signed"}, ["status"]),
    ("warnings on create", {**changed(["notes"], "n"), "warnings": []}, ["warnings"]),
    ("patient_id on create", {**changed(["notes"], "n"), "patient_id": str(uuid.uuid4())}, ["patient_id"]),
]


def with_ids(body, world, plan_id):
    body = copy.deepcopy(body)
    if body["supervising_clinician_id"] == PLACEHOLDER_WORLD.clinician.id:
        body["supervising_clinician_id"] = str(world.clinician.id)
    if body.get("plan_id") == PLAN_ID:
        body["plan_id"] = plan_id
    return body


@pytest.mark.parametrize(("name", "body", "loc"), INVALID, ids=[case[0] for case in INVALID])
async def test_invalid_sessions_are_422_naming_the_field(client, world, app, name, body, loc):
    plan = await active_plan(client, world)
    response = await create_session(client, world.clinician, world.patient.id, with_ids(body, world, plan["id"]))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["loc"] for error in problem["errors"]] == [["body", *loc]]
    assert problem["errors"][0]["msg"]
    assert "x" * 10_001 not in response.text and "euphoria" not in response.text  # never echoes the input
    assert await count(app, DosingSession) == 0


VALID_EDGES = [
    ("ranges at their bounds", dict(
        dose_mg=500.0, weight_kg=300.0, dissociation_cadss=92, sedation_moaas=0, pre_suds=0, post_suds=100,
        vitals=[*vital(systolic=300, diastolic=200, heart_rate=250, spo2=100, respiratory_rate=60),
                *vital(phase="post", systolic=51, diastolic=20, heart_rate=20, spo2=50, respiratory_rate=4,
                       at=at("13:10"))])),
    ("lower bounds", dict(weight_kg=20.0, dissociation_cadss=0, sedation_moaas=5, dose_mg=0.1)),
    ("integers for floats", dict(dose_mg=35, weight_kg=70)),
    ("a 12 h session with readings 2 h around it", dict(
        ended_at=at("21:00"), vitals=vital(at=at("07:00")) + vital(phase="post", at=at("23:00")),
        discharge={"at": at("23:00"), "criteria_met": True, "accompanied_by": "her partner"})),
    ("no optional fields", dict(ended_at=None, weight_kg=None, vitals=[], dissociation_cadss=None,
                                sedation_moaas=None, pre_suds=None, post_suds=None, adverse_events=[], notes=None,
                                discharge=None)),
    ("every adverse event kind", dict(adverse_events=[
        {"kind": kind, "severity": "moderate", "action": "observed", "at": at("09:30"),
         **({"description": "rash"} if kind == "other" else {})}
        for kind in ("nausea", "vomiting", "hypertension", "tachycardia", "dissociation", "anxiety", "headache",
                     "dizziness", "sedation", "respiratory_depression", "other")])),
]


@pytest.mark.parametrize(("name", "overrides"), VALID_EDGES, ids=[case[0] for case in VALID_EDGES])
async def test_values_at_the_edges_are_accepted(client, world, name, overrides):
    plan = await active_plan(client, world)
    body = {**example_session(world, plan["id"]), **overrides}
    response = await create_session(client, world.clinician, world.patient.id, body)
    assert response.status_code == 201, response.text


async def test_vitals_are_answered_in_time_order(client, world):
    readings = [*vital(phase="post", at=at("11:00")), *vital(phase="during", at=at("09:30")), *vital()]
    session = await new_session(client, world, vitals=readings)
    assert [v["phase"] for v in session["vitals"]] == ["pre", "during", "post"]


# --- the supervising clinician -----------------------------------------------------------------------------------


async def supervisor_candidates(app, world):
    """Users who may not supervise world.patient's sessions, by why."""
    async with app.state.sessions() as session:
        inactive = await add_user(session, world.org_a, Role.clinician, "Ina Inactive")
        inactive.is_active = False
        session.add(inactive)
        await session.commit()
    return {
        "clinician off the care team": world.other_clinician.id,
        "admin": world.admin.id,
        "the patient": world.patient_user.id,
        "clinician of another organization": world.clinician_b.id,
        "unknown user": uuid.uuid4(),
        "inactive clinician": inactive.id,
    }


async def test_the_supervisor_must_be_an_active_clinician_on_the_care_team(client, world, app):
    plan = await active_plan(client, world)
    candidates = await supervisor_candidates(app, world)
    # The inactive clinician is on the care team: only being inactive disqualifies them.
    inactive = candidates["inactive clinician"]
    await _join_care_team(app, world.patient.id, inactive)
    for why, user_id in candidates.items():
        body = {**example_session(world, plan["id"]), "supervising_clinician_id": str(user_id)}
        response = await create_session(client, world.clinician, world.patient.id, body)
        assert response.status_code == 422, why
        assert response.json()["errors"][0]["loc"] == ["body", "supervising_clinician_id"], why
    assert await count(app, DosingSession) == 0


async def _join_care_team(app, patient_id, user_id):
    async with app.state.sessions() as session:
        session.add(CareTeamMember(patient_id=patient_id, user_id=user_id, role=CareTeamRole.monitor))
        await session.commit()


async def test_another_care_team_clinician_may_supervise(client, world):
    response = await client.put(f"/v1/patients/{world.patient.id}/care-team/{world.other_clinician.id}",
                                json={"role": "monitor"}, headers=world.admin.headers)
    assert response.status_code == 201
    session = await new_session(client, world, supervising_clinician_id=str(world.other_clinician.id))
    assert session["supervising_clinician_id"] == str(world.other_clinician.id)
    assert session["created_by"] == str(world.clinician.id)


async def test_changing_the_supervisor_is_checked_too(client, world):
    draft = await new_session(client, world)
    response = await patch_session(client, world.clinician, draft["id"],
                                   {"supervising_clinician_id": str(world.other_clinician.id)}, draft["etag"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "supervising_clinician_id"]


# --- the plan link -----------------------------------------------------------------------------------------------


async def test_plan_id_must_be_the_patients_active_plan(client, world, app):
    draft_plan = await new_plan(client, world)
    other_patients = await active_plan(client, world, patient=world.fresh_patient)
    for plan_id in (draft_plan["id"], other_patients["id"], str(uuid.uuid4())):  # the patient has no active plan
        response = await create_session(client, world.clinician, world.patient.id, example_session(world, plan_id))
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "plan_id"]
        assert "no active plan" in response.json()["detail"]
    active = await active_plan(client, world)
    for plan_id in (draft_plan["id"], other_patients["id"]):
        response = await create_session(client, world.clinician, world.patient.id, example_session(world, plan_id))
        assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["body", "plan_id"]
        assert "Not the patient's active plan" in response.json()["detail"]
    ok = await create_session(client, world.clinician, world.patient.id, example_session(world, active["id"]))
    assert ok.status_code == 201
    assert await count(app, DosingSession) == 1


async def test_a_paused_plan_is_not_active(client, world):
    plan = await active_plan(client, world)
    await set_status(client, world.clinician, plan["id"], "paused")
    response = await create_session(client, world.clinician, world.patient.id, example_session(world, plan["id"]))
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["body", "plan_id"]


async def test_an_unplanned_session_needs_a_reason_and_only_then_has_one(client, world):
    plan = await active_plan(client, world)
    without = await create_session(client, world.clinician, world.patient.id, example_session(world, None))
    assert without.status_code == 422
    assert without.json()["errors"][0]["loc"] == ["body", "unplanned_reason"]
    both = {**example_session(world, plan["id"]), "unplanned_reason": "rescue dose"}
    response = await create_session(client, world.clinician, world.patient.id, both)
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["body", "unplanned_reason"]
    unplanned = {**example_session(world, None), "unplanned_reason": "  Crisis visit outside the plan  "}
    created = await create_session(client, world.clinician, world.patient.id, unplanned)
    assert created.status_code == 201, created.text
    assert created.json()["plan_id"] is None
    assert created.json()["unplanned_reason"] == "Crisis visit outside the plan"


async def test_an_unplanned_session_needs_no_plan_at_all(client, world):
    body = {**example_session(world, None), "unplanned_reason": "Single supervised dose before a plan is written"}
    response = await create_session(client, world.clinician, world.fresh_patient.id, body)
    assert response.status_code == 201, response.text


async def test_a_draft_keeps_its_plan_after_the_plan_ends_but_cannot_be_relinked_to_it(client, world):
    plan = await active_plan(client, world)
    draft = await new_session(client, world, plan)
    await set_status(client, world.clinician, plan["id"], "completed")
    # Other edits still work: the link was checked when it was made.
    edited = await patch_session(client, world.clinician, draft["id"], {"notes": "later"}, draft["etag"])
    assert edited.status_code == 200, edited.text
    unlinked = await patch_session(client, world.clinician, draft["id"],
                                   {"plan_id": None, "unplanned_reason": "Plan ended"}, edited.headers["etag"])
    assert unlinked.status_code == 200, unlinked.text
    relinked = await patch_session(client, world.clinician, draft["id"],
                                   {"plan_id": plan["id"], "unplanned_reason": None}, unlinked.headers["etag"])
    assert relinked.status_code == 422 and relinked.json()["errors"][0]["loc"] == ["body", "plan_id"]
