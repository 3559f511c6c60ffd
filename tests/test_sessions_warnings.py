"""Server-computed session warnings: each fires just past its threshold and not at it; the plan's safety overrides
the organization's default thresholds, which admins change with /v1/organization/settings; warnings follow every
draft edit and are frozen at signing."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from models import DosingSession, Organization
from tests.matrix import Route, by_role, cell_id, cells, check_route
from tests.plan_helpers import rows
from tests.session_helpers import (
    DAY,
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


def reading(clock, phase, systolic=128, diastolic=82):
    return {"at": at(clock), "phase": phase, "systolic": systolic, "diastolic": diastolic, "heart_rate": 74,
            "spo2": 98}


def pre_dose(systolic, diastolic):
    return [reading("08:55", "pre", systolic, diastolic)]


# An esketamine session whose blood pressure is checked before dosing and rechecked 40 minutes after it.
ESKETAMINE_VITALS = [reading("08:55", "pre"), reading("09:40", "post")]
ESKETAMINE_SESSION = dict(medication="esketamine", route="intranasal", dose_mg=56.0, vitals=ESKETAMINE_VITALS)


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


async def test_only_pre_dose_readings_count_for_the_pre_dose_hold(client, world):
    vitals = [*pre_dose(150, 90), reading("09:40", "during", 190, 110)]
    session = await session_with(client, world, vitals=vitals)
    assert codes(session) == ["bp_above_threshold_after_dose"]


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
                              "default_max_systolic": 160, "default_max_diastolic": 100, "esketamine_max_mg": 84.0,
                              "ketamine_parenteral_max_mg_per_kg": 1.0, "ketamine_oral_max_mg_per_kg": None,
                              "ketamine_sublingual_max_mg_per_kg": None, "ketamine_intranasal_max_mg_per_kg": None,
                              "require_staff_mfa": False}
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


# --- the clinical review's cases (issue 16) -------------------------------------------------------------------------


async def unplanned(client, world, **overrides):
    """An unplanned session of world.fresh_patient (who has no plan)."""
    body = {**example_session(world, None), "unplanned_reason": "rescue dose", **overrides}
    response = await create_session(client, world.clinician, world.fresh_patient.id, body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize(("dose_mg", "warns"), [(84.0, False), (84.1, True), (112.0, True), (500.0, True)])
async def test_issue16_6_unplanned_esketamine_has_the_labels_84_mg_ceiling(client, world, dose_mg, warns):
    session = await unplanned(client, world, **{**ESKETAMINE_SESSION, "dose_mg": dose_mg}, weight_kg=None)
    assert codes(session) == (["dose_above_ceiling"] if warns else [])
    if warns:
        assert f"{dose_mg:g} mg" in session["warnings"][0]["message"] and "84 mg" in session["warnings"][0]["message"]


@pytest.mark.parametrize("route", ["iv", "im", "subcutaneous"])
@pytest.mark.parametrize(("dose_mg", "weight_kg", "expected"), [
    (70.0, 70.0, []),                                   # 1.0 mg/kg × 70 kg exactly
    (70.1, 70.0, ["dose_above_ceiling"]),
    (300.0, 70.0, ["dose_above_ceiling"]),
    (300.0, None, ["weight_missing_for_weight_based_dose"]),  # a mg/kg ceiling needs the weight
])
async def test_issue16_6_unplanned_parenteral_ketamine_has_a_1_mg_per_kg_ceiling(client, world, route, dose_mg,
                                                                                  weight_kg, expected):
    session = await unplanned(client, world, route=route, dose_mg=dose_mg, weight_kg=weight_kg)
    assert codes(session) == expected


async def test_issue16_6_oral_and_sublingual_ketamine_have_no_default_ceiling_until_an_admin_sets_one(client, world):
    for route in ("oral", "sublingual", "intranasal"):
        assert codes(await unplanned(client, world, route=route, dose_mg=500.0, weight_kg=70.0)) == []
    changed = await client.patch(SETTINGS, json={"ketamine_oral_max_mg_per_kg": 2.0}, headers=world.admin.headers)
    assert changed.status_code == 200, changed.text
    assert codes(await unplanned(client, world, route="oral", dose_mg=140.0, weight_kg=70.0)) == []
    assert codes(await unplanned(client, world, route="oral", dose_mg=140.1, weight_kg=70.0)) == ["dose_above_ceiling"]
    assert codes(await unplanned(client, world, route="sublingual", dose_mg=500.0, weight_kg=70.0)) == []


async def test_issue16_6_planned_sessions_are_checked_against_the_ceiling_too(client, world):
    protocol = {"medication": "ketamine", "route": "iv", "dose": {"amount": 1.5, "unit": "mg/kg"},
                "infusion_minutes": 40, "phases": [{"name": "induction", "sessions": 6, "interval_days": 3}]}
    plan = await active_plan(client, world, protocol=protocol)
    assert codes(await session_with(client, world, plan, dose_mg=105.0, weight_kg=70.0)) == ["dose_above_ceiling"]


async def test_issue16_6_admins_set_the_dose_ceilings(client, world):
    defaults = (await client.get(SETTINGS, headers=world.clinician.headers)).json()
    assert {key: defaults[key] for key in CEILINGS} == {
        "esketamine_max_mg": 84.0, "ketamine_parenteral_max_mg_per_kg": 1.0, "ketamine_oral_max_mg_per_kg": None,
        "ketamine_sublingual_max_mg_per_kg": None, "ketamine_intranasal_max_mg_per_kg": None}
    body = {"esketamine_max_mg": 56, "ketamine_parenteral_max_mg_per_kg": 0.75, "ketamine_sublingual_max_mg_per_kg": 1.5}
    changed = await client.patch(SETTINGS, json=body, headers=world.admin.headers)
    assert changed.status_code == 200, changed.text
    assert {key: changed.json()[key] for key in body} == {key: float(value) for key, value in body.items()}
    assert codes(await unplanned(client, world, **{**ESKETAMINE_SESSION, "dose_mg": 56.5},
                                 weight_kg=None)) == ["dose_above_ceiling"]
    assert codes(await unplanned(client, world, route="im", dose_mg=52.6, weight_kg=70.0)) == ["dose_above_ceiling"]
    cleared = await client.patch(SETTINGS, json={"ketamine_sublingual_max_mg_per_kg": None},
                                 headers=world.admin.headers)
    assert cleared.json()["ketamine_sublingual_max_mg_per_kg"] is None
    assert (await client.get(SETTINGS, headers=world.admin_b.headers)).json()["esketamine_max_mg"] == 84.0


CEILINGS = ("esketamine_max_mg", "ketamine_parenteral_max_mg_per_kg", "ketamine_oral_max_mg_per_kg",
            "ketamine_sublingual_max_mg_per_kg", "ketamine_intranasal_max_mg_per_kg")


@pytest.mark.parametrize(("body", "loc"), [
    ({"esketamine_max_mg": 84.1}, "esketamine_max_mg"),  # never above the label
    ({"esketamine_max_mg": 0}, "esketamine_max_mg"),
    ({"esketamine_max_mg": None}, "esketamine_max_mg"),
    ({"ketamine_parenteral_max_mg_per_kg": 2.1}, "ketamine_parenteral_max_mg_per_kg"),
    ({"ketamine_parenteral_max_mg_per_kg": None}, "ketamine_parenteral_max_mg_per_kg"),
    ({"ketamine_oral_max_mg_per_kg": -1}, "ketamine_oral_max_mg_per_kg"),
    ({"ketamine_intranasal_max_mg_per_kg": "1"}, "ketamine_intranasal_max_mg_per_kg"),
])
async def test_issue16_6_invalid_ceilings_are_422(client, world, body, loc):
    response = await client.patch(SETTINGS, json=body, headers=world.admin.headers)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [["body", loc]]


async def test_issue16_7_a_protocol_deviation_keeps_every_dose_check(client, world):
    # The plan: ketamine 0.5 mg/kg iv. Given: im 200 mg at 70 kg, 2.86 mg/kg.
    session = await session_with(client, world, route="im", dose_mg=200.0, weight_kg=70.0)
    assert codes(session) == ["protocol_differs_from_plan", "dose_exceeds_plan", "dose_above_ceiling"]
    messages = [warning["message"] for warning in session["warnings"]]
    assert "ketamine im" in messages[0] and "ketamine iv" in messages[0]
    assert "35 mg" in messages[1] and "70 mg" in messages[2]


@pytest.mark.parametrize(("systolic", "diastolic", "warns"), [
    (140, 90, False), (141, 90, True), (140, 91, True), (158, 98, True),
])
async def test_issue16_8_esketamine_without_plan_thresholds_uses_the_labels_140_90(client, world, systolic,
                                                                                  diastolic, warns):
    plan = await active_plan(client, world, protocol=ESKETAMINE_PROTOCOL, safety=None)
    vitals = [reading("08:55", "pre", systolic, diastolic), reading("09:40", "post")]
    planned = await session_with(client, world, plan, **{**ESKETAMINE_SESSION, "vitals": vitals}, weight_kg=None)
    alone = await unplanned(client, world, **{**ESKETAMINE_SESSION, "vitals": vitals}, weight_kg=None)
    for session in (planned, alone):
        assert codes(session) == (["pre_dose_bp_above_threshold"] if warns else [])
        if warns:
            assert "140/90" in session["warnings"][0]["message"] and "label" in session["warnings"][0]["message"]


async def test_issue16_8_an_esketamine_plans_own_thresholds_still_apply(client, world):
    plan = await active_plan(client, world, protocol=ESKETAMINE_PROTOCOL)  # safety 160/100
    vitals = [reading("08:55", "pre", 158, 98), reading("09:40", "post")]
    assert codes(await session_with(client, world, plan, **{**ESKETAMINE_SESSION, "vitals": vitals},
                                    weight_kg=None)) == []


async def test_issue16_9_a_session_without_blood_pressure_is_flagged_and_signed_with_it(client, world):
    draft = await session_with(client, world, vitals=[])
    assert codes(draft) == ["pre_dose_bp_missing"]
    signed = await sign(client, world.clinician, draft["id"])
    assert codes(signed.json()) == ["pre_dose_bp_missing"]
    alerts = (await client.get("/v1/alerts", headers=world.clinician.headers)).json()["items"]
    assert [(a["kind"], a["source_id"]) for a in alerts] == [("session_warning", draft["id"])]
    only_later = [reading("09:30", "during"), reading("10:30", "post")]
    assert codes(await session_with(client, world, vitals=only_later)) == ["pre_dose_bp_missing"]


@pytest.mark.parametrize(("phase", "systolic", "diastolic", "warns"), [
    ("during", 200, 120, True), ("post", 200, 120, True), ("post", 161, 100, True), ("during", 160, 101, True),
    ("during", 160, 100, False), ("post", 150, 95, False),
])
async def test_issue16_9_readings_during_and_after_dosing_above_the_threshold(client, world, phase, systolic,
                                                                             diastolic, warns):
    vitals = [reading("08:55", "pre"), reading("09:40", phase, systolic, diastolic)]
    session = await session_with(client, world, vitals=vitals)
    assert codes(session) == (["bp_above_threshold_after_dose"] if warns else [])
    if warns:
        assert f"{systolic}/{diastolic}" in session["warnings"][0]["message"]


@pytest.mark.parametrize(("later", "warns"), [(None, True), ("09:29", True), ("09:30", False), ("10:45", False)])
async def test_issue16_9_esketamine_needs_a_recheck_from_30_minutes_after_dosing(client, world, later, warns):
    plan = await active_plan(client, world, protocol=ESKETAMINE_PROTOCOL)
    vitals = [reading("08:55", "pre"), *([reading(later, "post")] if later else [])]
    session = await session_with(client, world, plan, **{**ESKETAMINE_SESSION, "vitals": vitals}, weight_kg=None)
    assert codes(session) == (["post_dose_bp_recheck_missing"] if warns else [])


async def test_issue16_9_ketamine_needs_no_recheck(client, world):
    assert codes(await session_with(client, world, vitals=[reading("08:55", "pre")])) == []


def new_york(day: dt.date, clock: str) -> str:
    return dt.datetime.combine(day, dt.time.fromisoformat(clock), ZoneInfo("America/New_York")).isoformat()


@pytest.mark.parametrize(("days_after", "clock", "warns"), [
    (1, "23:30", True),   # the evening before the start date, local time (already the start date in UTC)
    (0, "00:30", False),  # the start date's first hour
    (0, "09:00", False),
    (-1, "09:00", False),  # the day after
])
async def test_issue16_9_a_session_before_its_plans_start_date_local_day(client, world, days_after, clock, warns):
    start = dt.date.fromisoformat(DAY)
    plan = await active_plan(client, world, start_date=start.isoformat())
    began = dt.datetime.fromisoformat(new_york(start - dt.timedelta(days=days_after), clock))
    body = dict(started_at=began.isoformat(), ended_at=(began + dt.timedelta(minutes=20)).isoformat(),
                vitals=[{**reading("08:55", "pre"), "at": (began - dt.timedelta(minutes=5)).isoformat()}],
                discharge={"at": (began + dt.timedelta(minutes=20)).isoformat(), "criteria_met": True})
    session = await session_with(client, world, plan, **body)
    assert codes(session) == (["session_before_plan_start"] if warns else [])
