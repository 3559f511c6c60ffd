"""Server-computed session warnings: each fires just past its threshold and not at it; the plan's safety overrides
the organization's default thresholds, which admins change with /v1/organization/settings; warnings follow every
draft edit and are frozen at signing."""

import pytest

from models import DosingSession, Organization
from tests.matrix import Route, by_role, cell_id, cells, check_route, on_patient
from tests.plan_helpers import rows
from tests.session_helpers import (
    active_plan,
    at,
    codes,
    create_session,
    example_session,
    new_session,
    patch_session,
    read,
    sign,
)

ESKETAMINE_PROTOCOL = {"medication": "esketamine", "route": "intranasal", "dose": {"amount": 56, "unit": "mg"},
                       "phases": [{"name": "induction", "sessions": 8, "interval_days": 3}]}
ESKETAMINE_SESSION = dict(medication="esketamine", route="intranasal", dose_mg=56.0)


def pre_dose(systolic, diastolic):
    return [{"at": at("08:55"), "phase": "pre", "systolic": systolic, "diastolic": diastolic, "heart_rate": 74,
             "spo2": 98}]


async def session_with(client, world, plan=None, **overrides):
    return await new_session(client, world, plan, **overrides)


# --- pre-dose blood pressure -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("systolic", "diastolic", "warns"), [
    (160, 100, False), (161, 100, True), (160, 101, True), (159, 99, False), (200, 60, True),
])
async def test_pre_dose_bp_against_the_plans_160_100(client, world, systolic, diastolic, warns):
    session = await session_with(client, world, vitals=pre_dose(systolic, diastolic))
    assert ("pre_dose_bp_above_threshold" in codes(session)) is warns
    if warns:
        warning = session["warnings"][0]
        assert f"{systolic}/{diastolic}" in warning["message"] and "160/100" in warning["message"]
        assert "plan" in warning["message"]


async def test_only_pre_dose_readings_count(client, world):
    vitals = [*pre_dose(150, 90), {"at": at("09:40"), "phase": "during", "systolic": 190, "diastolic": 110,
                                   "heart_rate": 95, "spo2": 97}]
    session = await session_with(client, world, vitals=vitals)
    assert codes(session) == []


async def test_any_pre_dose_reading_above_counts(client, world):
    vitals = [*pre_dose(150, 90), {**pre_dose(165, 90)[0], "at": at("08:58")}]
    assert codes(await session_with(client, world, vitals=vitals)) == ["pre_dose_bp_above_threshold"]


@pytest.mark.parametrize(("systolic", "diastolic", "warns"), [
    (140, 90, False), (141, 90, True), (140, 91, True),
])
async def test_the_plans_own_safety_thresholds_apply(client, world, systolic, diastolic, warns):
    plan = await active_plan(client, world, safety={"max_systolic": 140, "max_diastolic": 90})
    session = await session_with(client, world, plan, vitals=pre_dose(systolic, diastolic))
    assert ("pre_dose_bp_above_threshold" in codes(session)) is warns


async def set_organization_default(app, world, systolic, diastolic):
    async with app.state.sessions() as session:
        organization = await session.get(Organization, world.org_a.id)
        organization.default_max_systolic, organization.default_max_diastolic = systolic, diastolic
        session.add(organization)
        await session.commit()


@pytest.mark.parametrize(("systolic", "diastolic", "warns"), [
    (160, 100, False), (161, 100, True), (160, 101, True),
])
async def test_without_plan_safety_the_organizations_default_160_100_applies(client, world, systolic, diastolic,
                                                                            warns):
    plan = await active_plan(client, world, safety=None)
    session = await session_with(client, world, plan, vitals=pre_dose(systolic, diastolic))
    assert ("pre_dose_bp_above_threshold" in codes(session)) is warns
    if warns:
        assert "organization's default" in session["warnings"][0]["message"]


async def test_the_plans_safety_overrides_a_stricter_organization_default(client, world, app):
    await set_organization_default(app, world, 130, 80)
    plan = await active_plan(client, world)  # safety 160/100
    assert codes(await session_with(client, world, plan, vitals=pre_dose(150, 95))) == []


async def test_a_changed_organization_default_applies_to_plans_without_safety(client, world, app):
    await set_organization_default(app, world, 130, 80)
    plan = await active_plan(client, world, safety=None)
    assert codes(await session_with(client, world, plan, vitals=pre_dose(130, 80))) == []
    assert codes(await session_with(client, world, plan, vitals=pre_dose(131, 80))) == ["pre_dose_bp_above_threshold"]


async def test_unplanned_sessions_use_the_organizations_default(client, world):
    body = {**example_session(world, None), "unplanned_reason": "crisis", "vitals": pre_dose(161, 80)}
    response = await create_session(client, world.clinician, world.fresh_patient.id, body)
    assert codes(response.json()) == ["pre_dose_bp_above_threshold"]


# --- dose against the plan ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dose_mg", "weight_kg", "warns"), [
    (35.0, 70.0, False),  # exactly 0.5 mg/kg × 70 kg
    (35.1, 70.0, True),
    (34.9, 70.0, False),
    (35.0, 69.9, True),  # the same dose for a lighter patient is above plan
    (24.5, 49.0, False),  # 0.5 × 49 = 24.5 exactly
])
async def test_mg_per_kg_plans_compare_with_amount_times_weight(client, world, dose_mg, weight_kg, warns):
    session = await session_with(client, world, dose_mg=dose_mg, weight_kg=weight_kg)
    assert codes(session) == (["dose_exceeds_plan"] if warns else [])
    if warns:
        assert f"{dose_mg:g} mg" in session["warnings"][0]["message"]


async def test_float_rounding_of_the_planned_dose_never_warns(client, world):
    # 0.7 × 70 is 48.99999999999999 in binary floating point; 49 mg is the planned dose.
    protocol = {"medication": "ketamine", "route": "iv", "dose": {"amount": 0.7, "unit": "mg/kg"},
                "infusion_minutes": 40, "phases": [{"name": "induction", "sessions": 6, "interval_days": 3}]}
    plan = await active_plan(client, world, protocol=protocol)
    assert codes(await session_with(client, world, plan, dose_mg=49.0, weight_kg=70.0)) == []
    assert codes(await session_with(client, world, plan, dose_mg=49.1, weight_kg=70.0)) == ["dose_exceeds_plan"]


async def test_a_weight_based_plan_without_a_recorded_weight_warns_that_the_dose_cannot_be_checked(client, world):
    session = await session_with(client, world, weight_kg=None, dose_mg=200.0)
    assert codes(session) == ["weight_missing_for_weight_based_dose"]


@pytest.mark.parametrize(("dose_mg", "warns"), [(56.0, False), (56.1, True), (28.0, False), (84.0, True)])
async def test_mg_plans_compare_with_the_amount(client, world, dose_mg, warns):
    plan = await active_plan(client, world, protocol=ESKETAMINE_PROTOCOL)
    session = await session_with(client, world, plan, **{**ESKETAMINE_SESSION, "dose_mg": dose_mg},
                                 weight_kg=None, discharge={"at": at("11:00"), "criteria_met": True})
    assert codes(session) == (["dose_exceeds_plan"] if warns else [])


async def test_another_medication_or_route_than_planned_is_flagged_and_its_dose_not_compared(client, world):
    session = await session_with(client, world, route="im", dose_mg=100.0)
    assert codes(session) == ["protocol_differs_from_plan"]
    assert "ketamine im" in session["warnings"][0]["message"] and "ketamine iv" in session["warnings"][0]["message"]


async def test_unplanned_sessions_have_no_dose_check(client, world):
    body = {**example_session(world, None), "unplanned_reason": "crisis", "dose_mg": 300.0, "weight_kg": None}
    response = await create_session(client, world.clinician, world.fresh_patient.id, body)
    assert codes(response.json()) == []


# --- observation time --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("discharged", "warns"), [("11:00", False), ("10:59", True), ("13:00", False)])
async def test_intranasal_esketamine_needs_two_hours_of_observation(client, world, discharged, warns):
    plan = await active_plan(client, world, protocol=ESKETAMINE_PROTOCOL)
    session = await session_with(client, world, plan, **ESKETAMINE_SESSION, ended_at=at("13:00"),
                                 discharge={"at": at(discharged), "criteria_met": True})
    assert codes(session) == (["observation_shorter_than_required"] if warns else [])
    if warns:
        assert "119 min" in session["warnings"][0]["message"]


async def test_observation_is_judged_once_a_discharge_is_recorded(client, world):
    plan = await active_plan(client, world, protocol=ESKETAMINE_PROTOCOL)
    draft = await session_with(client, world, plan, **ESKETAMINE_SESSION, ended_at=None, discharge=None)
    assert codes(draft) == []
    early = await patch_session(client, world.clinician, draft["id"],
                                {"ended_at": at("10:30"), "discharge": {"at": at("10:30"), "criteria_met": True}},
                                draft["etag"])
    assert codes(early.json()) == ["observation_shorter_than_required"]


async def test_other_medications_have_no_fixed_observation_time(client, world):
    session = await session_with(client, world, ended_at=at("09:30"),
                                 discharge={"at": at("09:30"), "criteria_met": True})
    assert codes(session) == []


async def test_discharge_without_criteria_met_is_flagged(client, world):
    session = await session_with(client, world, discharge={"at": at("11:10"), "criteria_met": False,
                                                           "accompanied_by": "ambulance crew"})
    assert codes(session) == ["discharge_criteria_not_met"]


# --- adverse events ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("severities", "warns"), [
    ([], False), (["mild"], False), (["moderate"], False), (["mild", "moderate"], False), (["severe"], True),
    (["mild", "severe"], True),
])
async def test_a_severe_adverse_event_is_flagged(client, world, severities, warns):
    events = [{"kind": "hypertension", "severity": severity, "action": "labetalol 10 mg iv"}
              for severity in severities]
    session = await session_with(client, world, adverse_events=events)
    assert codes(session) == (["severe_adverse_event"] if warns else [])
    if warns:
        assert "hypertension" in session["warnings"][0]["message"]


# --- warnings through the record's life ----------------------------------------------------------------------------


async def test_warnings_are_stored_flagged_recomputed_on_edits_and_frozen_at_signing(client, world, app):
    draft = await session_with(client, world, vitals=pre_dose(170, 100),
                               adverse_events=[{"kind": "vomiting", "severity": "severe", "action": "observed"}])
    assert codes(draft) == ["pre_dose_bp_above_threshold", "severe_adverse_event"]
    stored = (await rows(app, DosingSession))[0]
    assert stored.has_warnings is True and [w["code"] for w in stored.warnings] == codes(draft)

    calmer = await patch_session(client, world.clinician, draft["id"],
                                 {"vitals": pre_dose(150, 90), "adverse_events": []}, draft["etag"])
    assert codes(calmer.json()) == []
    assert (await rows(app, DosingSession))[0].has_warnings is False

    signed = await sign(client, world.clinician, draft["id"])
    assert codes(signed.json()) == []


async def test_signing_recomputes_the_warnings_with_the_thresholds_in_force(client, world, app):
    plan = await active_plan(client, world, safety=None)
    draft = await session_with(client, world, plan, vitals=pre_dose(150, 90))
    assert codes(draft) == []
    await set_organization_default(app, world, 140, 90)
    signed = await sign(client, world.clinician, draft["id"])
    assert codes(signed.json()) == ["pre_dose_bp_above_threshold"]
    await set_organization_default(app, world, 160, 100)
    assert codes((await read(client, world.clinician, draft["id"])).json()) == ["pre_dose_bp_above_threshold"]


# --- the organization's default thresholds --------------------------------------------------------------------------

SETTINGS = "/v1/organization/settings"


async def test_admins_change_the_default_thresholds_and_new_drafts_use_them(client, world):
    current = await client.get(SETTINGS, headers=world.admin.headers)
    assert current.status_code == 200
    assert current.json() == {"organization_id": str(world.org_a.id), "name": "Calm Clinic",
                              "default_max_systolic": 160, "default_max_diastolic": 100}
    changed = await client.patch(SETTINGS, json={"default_max_systolic": 150}, headers=world.admin.headers)
    assert changed.status_code == 200
    assert (changed.json()["default_max_systolic"], changed.json()["default_max_diastolic"]) == (150, 100)
    other = await client.get(SETTINGS, headers=world.admin_b.headers)
    assert other.json()["default_max_systolic"] == 160  # another organization is untouched
    plan = await active_plan(client, world, safety=None)
    assert codes(await session_with(client, world, plan, vitals=pre_dose(151, 80))) == ["pre_dose_bp_above_threshold"]


@pytest.mark.parametrize(("body", "loc"), [
    ({"default_max_systolic": 89}, "default_max_systolic"),
    ({"default_max_systolic": 251}, "default_max_systolic"),
    ({"default_max_diastolic": 49}, "default_max_diastolic"),
    ({"default_max_diastolic": 151}, "default_max_diastolic"),
    ({"default_max_diastolic": 160}, "default_max_diastolic"),  # not below the current systolic
    ({"default_max_systolic": 100}, "default_max_systolic"),  # not above the current diastolic
    ({"default_max_systolic": None}, "default_max_systolic"),
    ({"default_max_systolic": "150"}, "default_max_systolic"),
    ({"name": "Renamed"}, "name"),
])
async def test_invalid_settings_are_422(client, world, body, loc):
    response = await client.patch(SETTINGS, json=body, headers=world.admin.headers)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [["body", loc]]
    assert (await client.get(SETTINGS, headers=world.admin.headers)).json()["default_max_systolic"] == 160


async def test_changing_the_settings_is_audited(client, world):
    await client.patch(SETTINGS, json={"default_max_diastolic": 95}, headers=world.admin.headers)
    events = (await client.get("/v1/audit-events", params={"action": "organization.settings_update"},
                               headers=world.admin.headers)).json()["items"]
    assert [(e["actor_id"], e["resource_id"]) for e in events] == [(str(world.admin.id), str(world.org_a.id))]


STAFF = by_role(admin=200, clinician=200, patient=403)
SETTINGS_ROUTES = [
    Route("read_settings", "GET", lambda w: SETTINGS, STAFF),
    Route("update_settings", "PATCH", lambda w: SETTINGS, by_role(admin=200, clinician=403, patient=403),
          json=lambda w: {"default_max_systolic": 150}),
]


@pytest.mark.parametrize(("route", "caller"), cells(SETTINGS_ROUTES), ids=cell_id)
async def test_settings_access(client, world, route, caller):
    await check_route(client, world, route, caller)
