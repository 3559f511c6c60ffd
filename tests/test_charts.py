"""Charts: local-calendar buckets (DST included), baseline and change, response/remission/MCID at their boundaries,
onset and durability, the sessions overlay, authorisation, audit and validation."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, update

from api.charts import queries as chart_queries
from api.charts import service as charts
from api.instruments.registry import INSTRUMENTS
from models import AuditEvent, Patient, Score
from models.dosing_sessions import DosingSession, SessionStatus
from api.security.scopes import Scope
from tests.conftest import ON_POSTGRES
from tests.matrix import Route, by_role, cell_id, cells, check_route, on_patient
from tests.plan_helpers import new_plan, plan_body, rows, set_status
from tests.session_helpers import active_plan, new_session, sign

NEW_YORK = "America/New_York"


# --- helpers ----------------------------------------------------------------------------------------------------


def instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def z(value: str) -> str:
    """The server's answer for an instant: UTC with Z."""
    return instant(value).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def items_for(instrument: str, total: int) -> list[int]:
    spec = INSTRUMENTS[instrument]
    items = []
    for _ in range(spec.item_count):
        items.append(min(spec.item_max, total - sum(items)))
    assert sum(items) == total
    return items


async def set_timezone(app, patient, timezone: str) -> None:
    async with app.state.sessions() as session:
        await session.exec(update(Patient).where(Patient.id == patient.id).values(timezone=timezone))
        await session.commit()


async def add_scores(app, world, scores: list[tuple], *, patient=None, instrument: str = "gad7") -> None:
    """Stores scores directly: (recorded_at, total) or (recorded_at, total, "deleted") for a tombstone."""
    patient = patient or world.patient
    async with app.state.sessions() as session:
        for recorded_at, total, *flags in scores:
            at = instant(recorded_at) if isinstance(recorded_at, str) else recorded_at
            session.add(Score(
                id=uuid.uuid4(), patient_id=patient.id, instrument=instrument, items=items_for(instrument, total),
                total=total, severity=INSTRUMENTS[instrument].severity(total), recorded_at=at,
                recorded_offset_minutes=int(at.utcoffset().total_seconds() // 60), received_at=at, source="patient",
                entered_by=world.patient_user.id, updated_at=at, deleted_at=at if "deleted" in flags else None))
        await session.commit()


async def add_session(app, world, started_at: str, *, plan_id=None, signed: bool = True) -> str:
    """A session stored directly (at any time, under any plan): signed as the signing route leaves it, or a draft."""
    start = instant(started_at)
    signature = dict(status=SessionStatus.signed, revision=2, signed_by=world.clinician.id,
                     signed_at=start + dt.timedelta(hours=3)) if signed else dict(status=SessionStatus.draft, revision=1)
    row = DosingSession(
        patient_id=world.patient.id, **signature,
        plan_id=uuid.UUID(plan_id) if plan_id else None, unplanned_reason=None if plan_id else "rescue dose",
        supervising_clinician_id=world.clinician.id, started_at=start, ended_at=start + dt.timedelta(hours=2),
        medication="ketamine", route="iv", dose_mg=35.0, weight_kg=70.0, vitals=[], adverse_events=[],
        discharge={"at": (start + dt.timedelta(hours=2)).isoformat(), "criteria_met": True}, warnings=[],
        has_warnings=False, created_by=world.clinician.id, updated_by=world.clinician.id)
    async with app.state.sessions() as session:
        session.add(row)
        await session.commit()
        return str(row.id)


async def chart(client, actor, patient_id=None, **params):
    params = {"instrument": "gad7", **params}
    path = "/v1/me/chart" if patient_id is None else f"/v1/patients/{patient_id}/chart"
    return await client.get(path, params=params, headers=actor.headers)


async def chart_json(client, world, **params) -> dict:
    response = await chart(client, world.clinician, world.patient.id, **params)
    assert response.status_code == 200, response.text
    return response.json()


def buckets(answer: dict) -> dict[str, tuple]:
    return {p["bucket_start"]: (p["mean"], p["min"], p["max"], p["n"]) for p in answer["points"]}


# --- buckets in the patient's calendar ---------------------------------------------------------------------------


async def test_the_contract_example_shape(client, world, app):
    await add_scores(app, world, [("2026-11-30T09:00:00-05:00", 16), ("2026-12-02T09:00:00-05:00", 13)])
    answer = await chart_json(client, world, bucket="week", **{"from": "2026-11-01", "to": "2026-12-31"})
    assert answer["instrument"] == "gad7" and answer["bucket"] == "week" and answer["timezone"] == NEW_YORK
    assert (answer["from"], answer["to"]) == ("2026-11-01", "2026-12-31")
    assert answer["points"] == [{"bucket_start": "2026-11-30", "mean": 14.5, "min": 13, "max": 16, "n": 2}]
    assert answer["baseline"] == {"total": 16, "recorded_at": "2026-11-30T14:00:00Z", "pre_treatment": False}
    assert answer["latest"] == {"total": 13, "recorded_at": "2026-12-02T14:00:00Z"}
    assert answer["bands"] == [{"label": "minimal", "min": 0, "max": 4}, {"label": "mild", "min": 5, "max": 9},
                               {"label": "moderate", "min": 10, "max": 14}, {"label": "severe", "min": 15, "max": 21}]
    assert answer["sessions"] == [] and answer["onset"] is None and answer["durability"] is None


async def test_sunday_2330_local_belongs_to_that_iso_week_across_the_dst_change(client, world, app):
    # 2026-11-01 is the Sunday New York leaves DST (a 25-hour day). 23:30 EST that night is Monday 04:30 UTC.
    await add_scores(app, world, [
        ("2026-11-01T00:30:00-04:00", 10),  # Sunday 00:30 EDT
        ("2026-11-01T23:30:00-05:00", 12),  # Sunday 23:30 EST = 2026-11-02T04:30Z
        ("2026-11-02T00:10:00-05:00", 20),  # Monday 00:10 EST: the next week
    ])
    window = {"from": "2026-10-01", "to": "2026-11-30"}
    weeks = buckets(await chart_json(client, world, bucket="week", **window))
    assert weeks == {"2026-10-26": (11.0, 10, 12, 2), "2026-11-02": (20.0, 20, 20, 1)}
    days = buckets(await chart_json(client, world, bucket="day", **window))
    assert days == {"2026-11-01": (11.0, 10, 12, 2), "2026-11-02": (20.0, 20, 20, 1)}


async def test_day_buckets_across_the_spring_dst_change(client, world, app):
    # 2026-03-08 has 23 hours in New York: 00:30 EST and 23:30 EDT are the same local day.
    await add_scores(app, world, [("2026-03-08T00:30:00-05:00", 7), ("2026-03-08T23:30:00-04:00", 8),
                                  ("2026-03-07T23:59:00-05:00", 9)])
    days = buckets(await chart_json(client, world, bucket="day", **{"from": "2026-03-01", "to": "2026-03-31"}))
    assert days == {"2026-03-07": (9.0, 9, 9, 1), "2026-03-08": (7.5, 7, 8, 2)}


async def test_month_starts_in_the_patients_zone_west_and_east_of_utc(client, world, app):
    await add_scores(app, world, [("2026-10-31T23:30:00-04:00", 6),   # 2026-11-01T03:30Z: still October locally
                                  ("2026-11-01T00:00:00-04:00", 8)])  # midnight: November
    months = buckets(await chart_json(client, world, bucket="month", **{"from": "2026-10-01", "to": "2026-11-30"}))
    assert months == {"2026-10-01": (6.0, 6, 6, 1), "2026-11-01": (8.0, 8, 8, 1)}

    await set_timezone(app, world.patient, "Asia/Kolkata")  # +05:30: 2026-10-31T20:00Z is 1 November 01:30
    months = buckets(await chart_json(client, world, bucket="month", **{"from": "2026-10-01", "to": "2026-11-30"}))
    assert months == {"2026-11-01": (7.0, 6, 8, 2)}
    answer = await chart_json(client, world, bucket="month", **{"from": "2026-10-01", "to": "2026-11-30"})
    assert answer["timezone"] == "Asia/Kolkata"


async def test_iso_weeks_start_on_monday_and_mean_min_max_n(client, world, app):
    # Monday 2026-06-01 … Sunday 2026-06-07, then Monday 2026-06-08.
    await add_scores(app, world, [("2026-06-01T00:00:00-04:00", 3), ("2026-06-03T12:00:00-04:00", 10),
                                  ("2026-06-07T23:59:59-04:00", 4), ("2026-06-08T00:00:00-04:00", 21)])
    weeks = buckets(await chart_json(client, world, bucket="week", **{"from": "2026-05-01", "to": "2026-06-30"}))
    assert weeks == {"2026-06-01": (5.7, 3, 10, 3), "2026-06-08": (21.0, 21, 21, 1)}


async def test_tombstones_never_count(client, world, app):
    await add_scores(app, world, [("2026-06-01T09:00:00-04:00", 20, "deleted"), ("2026-06-02T09:00:00-04:00", 12),
                                  ("2026-06-03T09:00:00-04:00", 6), ("2026-06-04T09:00:00-04:00", 1, "deleted")])
    answer = await chart_json(client, world, bucket="week", **{"from": "2026-05-01", "to": "2026-06-30"})
    assert buckets(answer) == {"2026-06-01": (9.0, 6, 12, 2)}
    assert answer["baseline"]["total"] == 12 and answer["latest"]["total"] == 6


async def test_the_range_is_local_days_inclusive(client, world, app):
    await add_scores(app, world, [("2026-06-01T23:59:00-04:00", 5), ("2026-06-02T00:00:00-04:00", 6),
                                  ("2026-06-04T23:59:00-04:00", 7), ("2026-06-05T00:01:00-04:00", 8)])
    days = buckets(await chart_json(client, world, bucket="day", **{"from": "2026-06-02", "to": "2026-06-04"}))
    assert days == {"2026-06-02": (6.0, 6, 6, 1), "2026-06-04": (7.0, 7, 7, 1)}
    # A week bucket starting before `from` holds only the scores in range; baseline and latest ignore the range.
    answer = await chart_json(client, world, bucket="week", **{"from": "2026-06-02", "to": "2026-06-04"})
    assert buckets(answer) == {"2026-06-01": (6.5, 6, 7, 2)}
    assert answer["baseline"]["total"] == 5 and answer["latest"]["total"] == 8


async def test_default_range_is_the_year_up_to_today(client, world, app):
    now = dt.datetime.now(dt.UTC)
    await add_scores(app, world, [(now - dt.timedelta(days=400), 9), (now - dt.timedelta(days=300), 8),
                                  (now - dt.timedelta(hours=1), 7)])
    answer = await chart_json(client, world, bucket="month")
    today = now.astimezone(ZoneInfo(NEW_YORK)).date()
    assert answer["to"] == today.isoformat()
    assert answer["from"] == (today - dt.timedelta(days=365)).isoformat()
    assert sum(p["n"] for p in answer["points"]) == 2
    assert answer["baseline"]["total"] == 9  # the first score, outside the window


async def test_no_scores(client, world):
    answer = await chart_json(client, world)
    for field in ("baseline", "latest", "change", "percent_change", "response", "remission",
                  "clinically_meaningful_change", "onset", "durability"):
        assert answer[field] is None, field
    assert answer["points"] == [] and len(answer["bands"]) == 4


async def test_other_instruments_and_patients_stay_out(client, world, app):
    await add_scores(app, world, [("2026-06-01T09:00:00-04:00", 10)])
    await add_scores(app, world, [("2026-06-01T10:00:00-04:00", 20)], instrument="phq9")
    await add_scores(app, world, [("2026-06-01T11:00:00-04:00", 3)], patient=world.fresh_patient)
    answer = await chart_json(client, world, bucket="day", **{"from": "2026-06-01", "to": "2026-06-01"})
    assert buckets(answer) == {"2026-06-01": (10.0, 10, 10, 1)}
    phq9 = await chart_json(client, world, instrument="phq9", **{"from": "2026-06-01", "to": "2026-06-01"})
    assert buckets(phq9) == {"2026-06-01": (20.0, 20, 20, 1)}  # a Monday
    assert phq9["bands"][-1] == {"label": "severe", "min": 20, "max": 27}


# --- baseline and change ------------------------------------------------------------------------------------------


async def test_baseline_is_the_first_score_without_a_plan(client, world, app):
    await new_plan(client, world, plan_body(start_date="2026-10-15", goals=[]))  # a draft is no plan yet
    await add_session(app, world, "2026-10-05T09:00:00-04:00")  # unplanned sessions start no treatment
    await add_scores(app, world, [("2026-10-01T09:00:00-04:00", 18), ("2026-10-10T09:00:00-04:00", 14),
                                  ("2026-10-20T09:00:00-04:00", 9)])
    answer = await chart_json(client, world)
    assert answer["baseline"] == {"total": 18, "recorded_at": "2026-10-01T13:00:00Z", "pre_treatment": False}
    assert answer["latest"] == {"total": 9, "recorded_at": "2026-10-20T13:00:00Z"}
    assert (answer["change"], answer["percent_change"], answer["response"]) == (-9, -50.0, True)


async def test_before_the_plans_first_session_the_baseline_is_the_last_score_of_its_start_date(client, world, app):
    await active_plan(client, world, start_date="2026-10-15", goals=[])
    await add_session(app, world, "2026-10-15T09:00:00-04:00")  # unplanned: not the plan's first dose
    await add_scores(app, world, [
        ("2026-10-01T09:00:00-04:00", 18),
        ("2026-10-15T23:30:00-04:00", 16),  # the start date's last local half hour (2026-10-16T03:30Z)
        ("2026-10-16T00:30:00-04:00", 20),  # the day after
        ("2026-10-30T09:00:00-04:00", 8),
    ])
    answer = await chart_json(client, world)
    assert answer["baseline"] == {"total": 16, "recorded_at": "2026-10-16T03:30:00Z", "pre_treatment": True}
    assert (answer["change"], answer["percent_change"], answer["response"]) == (-8, -50.0, True)
    assert answer["onset"] is None  # no session of the plan yet


async def test_an_active_plan_with_no_earlier_score_falls_back_to_the_first(client, world, app):
    await active_plan(client, world, start_date="2026-09-01", goals=[])
    await add_scores(app, world, [("2026-10-01T09:00:00-04:00", 18), ("2026-10-20T09:00:00-04:00", 12)])
    baseline = (await chart_json(client, world))["baseline"]
    assert (baseline["total"], baseline["pre_treatment"]) == (18, False)


@pytest.mark.parametrize(("baseline", "latest", "change", "percent", "response"), [
    (16, 8, -8, -50.0, True),     # exactly 50 %: response
    (16, 9, -7, -43.8, False),
    (15, 7, -8, -53.3, True),
    (15, 8, -7, -46.7, False),    # 46.7 %: not yet
    (10, 14, 4, 40.0, False),     # worsening
    (0, 3, 3, None, None),        # no percentage of nothing
])
async def test_change_percent_and_response_boundaries(client, world, app, baseline, latest, change, percent, response):
    await add_scores(app, world, [("2026-10-01T09:00:00-04:00", baseline), ("2026-10-08T09:00:00-04:00", latest)])
    answer = await chart_json(client, world)
    assert (answer["change"], answer["percent_change"], answer["response"]) == (change, percent, response)


@pytest.mark.parametrize(("instrument", "baseline", "latest", "remission", "meaningful"), [
    ("gad7", 8, 4, True, True),     # latest 4 < 5: remission; |−4| ≥ 4
    ("gad7", 8, 5, False, False),   # 5 is not remission; |−3| < 4
    ("gad7", 1, 5, None, True),     # worsening by 4 is meaningful too; from minimal, remission is not judged
    ("phq9", 9, 4, True, True),     # |−5| ≥ 5
    ("phq9", 9, 5, False, False),   # |−4| < 5
    ("suds", 90, 10, None, None),   # no remission threshold, no MCID
    ("gad2", 6, 0, None, None),
])
async def test_remission_and_clinically_meaningful_change_from_the_registry(
    client, world, app, instrument, baseline, latest, remission, meaningful
):
    await add_scores(app, world, [("2026-10-01T09:00:00-04:00", baseline), ("2026-10-08T09:00:00-04:00", latest)],
                     instrument=instrument)
    answer = await chart_json(client, world, instrument=instrument)
    assert (answer["remission"], answer["clinically_meaningful_change"]) == (remission, meaningful)


async def test_a_single_score_is_both_baseline_and_latest(client, world, app):
    await add_scores(app, world, [("2026-10-01T09:00:00-04:00", 3)])
    answer = await chart_json(client, world)
    assert answer["baseline"] == {**answer["latest"], "pre_treatment": False}
    assert (answer["change"], answer["percent_change"], answer["response"], answer["remission"],
            answer["clinically_meaningful_change"]) == (0, 0.0, None, None, False)


# --- onset and durability -------------------------------------------------------------------------------------------


async def treated(client, app, world, start_date: str, *sessions: str) -> dict:
    """An active plan starting on `start_date` with a signed session at each of `sessions`."""
    plan = await active_plan(client, world, start_date=start_date, goals=[])
    for started_at in sessions:
        await add_session(app, world, started_at, plan_id=plan["id"])
    return plan


async def test_onset_counts_from_the_plans_first_signed_session(client, world, app):
    await add_session(app, world, "2026-10-10T09:00:00-04:00")  # unplanned, before the plan's sessions
    await treated(client, app, world, "2026-10-15", "2026-10-16T09:00:00-04:00", "2026-10-19T09:00:00-04:00")
    await add_scores(app, world, [
        ("2026-10-14T09:00:00-04:00", 20),  # baseline
        ("2026-10-17T09:00:00-04:00", 12),
        ("2026-10-19T21:00:00-04:00", 10),  # the first response after the session: 3.5 days
        ("2026-10-25T09:00:00-04:00", 4),
    ])
    answer = await chart_json(client, world)
    assert answer["onset"] == 3.5


async def test_onset_ignores_drafts(client, world, app):
    plan = await treated(client, app, world, "2026-10-01", "2026-10-10T09:00:00-04:00")
    await add_session(app, world, "2026-10-08T09:00:00-04:00", plan_id=plan["id"], signed=False)  # no dose yet
    await add_scores(app, world, [("2026-10-09T09:00:00-04:00", 16), ("2026-10-10T15:00:00-04:00", 8)])
    answer = await chart_json(client, world)
    assert answer["baseline"]["total"] == 16 and answer["onset"] == 0.25  # six hours: rapid relief


async def test_onset_is_null_without_a_plans_session_or_a_response(client, world, app):
    await add_scores(app, world, [("2026-10-09T09:00:00-04:00", 16), ("2026-10-10T15:00:00-04:00", 8)])
    await add_session(app, world, "2026-10-10T09:00:00-04:00")  # unplanned, and no plan at all
    assert (await chart_json(client, world))["onset"] is None
    await treated(client, app, world, "2026-10-01", "2026-10-11T09:00:00-04:00")  # after the only response
    answer = await chart_json(client, world)
    assert (answer["baseline"]["total"], answer["onset"], answer["durability"]) == (8, None, None)


async def test_durability_counts_a_lapse_by_bucket_mean_and_a_regained_response(client, world, app):
    await treated(client, app, world, "2026-10-05", "2026-10-05T12:00:00-04:00")
    await add_scores(app, world, [
        ("2026-10-05T09:00:00-04:00", 20),  # baseline (week of 10-05)
        ("2026-10-06T09:00:00-04:00", 9),   # first response; its week is judged from it on: mean 10, holds
        ("2026-10-07T09:00:00-04:00", 11),
        ("2026-10-12T09:00:00-04:00", 12),  # week 10-12: mean 10 = exactly half, holds
        ("2026-10-14T09:00:00-04:00", 8),
        ("2026-10-19T09:00:00-04:00", 8),   # week 10-19: mean 10.5, a lapse though one score responds
        ("2026-10-21T09:00:00-04:00", 13),
        ("2026-11-02T09:00:00-05:00", 6),   # week 11-02 (10-26 has no scores: no data, no lapse): regained
        ("2026-11-05T09:00:00-05:00", 11),  # week mean 8.5
    ])
    durability = (await chart_json(client, world))["durability"]
    assert durability == {
        "first_response_at": "2026-10-06T13:00:00Z", "responding_now": True, "lapses": 1,
        "response_since": "2026-11-02T14:00:00Z", "days_sustained": 3.0,
    }


async def test_durability_not_responding_now_and_regained(client, world, app):
    await treated(client, app, world, "2026-10-05", "2026-10-05T12:00:00-04:00")
    await add_scores(app, world, [("2026-10-05T09:00:00-04:00", 20), ("2026-10-06T09:00:00-04:00", 10),
                                  ("2026-10-13T09:00:00-04:00", 9), ("2026-10-20T09:00:00-04:00", 11)])
    lapsed = (await chart_json(client, world))["durability"]
    assert lapsed == {"first_response_at": "2026-10-06T13:00:00Z", "responding_now": False, "lapses": 1,
                      "response_since": None, "days_sustained": 0.0}
    # Day buckets: each day is its own bucket, so the same scores lapse on 10-20 too.
    assert (await chart_json(client, world, bucket="day"))["durability"]["lapses"] == 1

    await add_scores(app, world, [("2026-10-27T09:00:00-04:00", 2)])
    held = (await chart_json(client, world))["durability"]
    assert (held["responding_now"], held["lapses"], held["response_since"]) == (True, 1, "2026-10-27T13:00:00Z")
    assert held["days_sustained"] == 0.0  # regained by the latest score itself


async def test_durability_holding_since_the_first_response(client, world, app):
    await treated(client, app, world, "2026-10-05", "2026-10-05T12:00:00-04:00")
    await add_scores(app, world, [("2026-10-05T09:00:00-04:00", 12), ("2026-10-06T09:00:00-04:00", 6),
                                  ("2026-10-13T21:00:00-04:00", 5)])
    durability = (await chart_json(client, world))["durability"]
    assert durability == {"first_response_at": "2026-10-06T13:00:00Z", "responding_now": True, "lapses": 0,
                          "response_since": "2026-10-06T13:00:00Z", "days_sustained": 7.5}


async def test_no_durability_without_a_response_after_baseline(client, world, app):
    await active_plan(client, world, start_date="2026-10-15", goals=[])
    # An earlier low score is before the baseline, not a response to treatment.
    await add_scores(app, world, [("2026-10-01T09:00:00-04:00", 4), ("2026-10-15T09:00:00-04:00", 16),
                                  ("2026-10-20T09:00:00-04:00", 10)])
    answer = await chart_json(client, world)
    assert (answer["baseline"]["total"], answer["response"], answer["durability"]) == (16, False, None)


async def test_durability_starts_at_the_end_of_the_start_date_before_any_session(client, world, app):
    await active_plan(client, world, start_date="2026-10-15", goals=[])
    await add_scores(app, world, [("2026-10-15T09:00:00-04:00", 16), ("2026-10-15T20:00:00-04:00", 8),
                                  ("2026-10-16T09:00:00-04:00", 8)])
    answer = await chart_json(client, world)
    assert answer["baseline"]["total"] == 8 and answer["onset"] is None
    assert answer["durability"] is None  # 8 against 8 is no response

    await add_scores(app, world, [("2026-10-17T09:00:00-04:00", 4)])
    durability = (await chart_json(client, world))["durability"]
    assert (durability["first_response_at"], durability["responding_now"]) == ("2026-10-17T13:00:00Z", True)


# --- cost ------------------------------------------------------------------------------------------------------------


async def test_a_chart_costs_three_selects_and_the_audit_insert(client, world, app):
    """The chart is a benchmarked hot path (bench/): the patient, the chart plan with the sessions, and the scores;
    on PostgreSQL all of it, the audit row included, is one statement on the driver (api/statements.py), which
    SQLAlchemy's events do not see."""
    march = await plan_in_status(client, world, "2026-03-01", "completed")
    await add_session(app, world, "2026-03-10T09:00:00-04:00", plan_id=march["id"])
    await treated(client, app, world, "2026-10-05", "2026-10-05T12:00:00-04:00", "2026-10-08T12:00:00-04:00")
    await add_scores(app, world, [("2026-10-05T09:00:00-04:00", 20), ("2026-10-06T09:00:00-04:00", 9)])
    seen: list[str] = []

    def record(_connection, _cursor, statement, *_):
        if "access_revocation" not in statement:  # the process's periodic reread of revocations, not the chart's
            seen.append(statement.split(None, 1)[0].upper())

    event.listen(app.state.engine.sync_engine, "before_cursor_execute", record)
    try:
        answer = await chart_json(client, world)
    finally:
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", record)
    assert answer["onset"] == 0.88 and len(answer["sessions"]) == 3  # 21 hours; every signed session shown
    assert sorted(seen) == ([] if ON_POSTGRES else ["INSERT", "SELECT", "SELECT", "SELECT"])


# --- sessions overlay ------------------------------------------------------------------------------------------------


async def test_sessions_overlay_shows_signed_sessions_in_range_only(client, world, app):
    draft = await new_session(client, world)
    signed = await new_session(client, world, dose_mg=40.0)
    assert (await sign(client, world.clinician, signed["id"])).status_code == 200
    old = await add_session(app, world, "2020-01-01T09:00:00-05:00")
    expected = [{"id": signed["id"], "started_at": signed["started_at"], "dose_mg": 40.0, "route": "iv"}]
    for actor, patient_id in ((world.patient_user, None), (world.patient_user, world.patient.id),
                              (world.clinician, world.patient.id), (world.admin, world.patient.id)):
        response = await chart(client, actor, patient_id)
        assert response.status_code == 200, response.text
        assert response.json()["sessions"] == expected
    whole = await chart(client, world.patient_user, None, **{"from": "2019-12-31", "to": "2020-01-01"})
    assert [s["id"] for s in whole.json()["sessions"]] == [old]
    assert draft["id"] not in str(whole.json())


# --- who may read it --------------------------------------------------------------------------------------------------


READ = on_patient(200, scope=Scope.scores_read)
ROUTES = [
    Route("patient_chart", "GET", lambda w: f"/v1/patients/{w.patient.id}/chart?instrument=gad7", READ),
    Route("my_chart", "GET", lambda w: "/v1/me/chart?instrument=phq9&bucket=month",
          by_role(admin=403, clinician=403, patient=200)),
]


@pytest.mark.parametrize(("route", "caller"), cells(ROUTES), ids=cell_id)
async def test_access(client, world, route, caller):
    await check_route(client, world, route, caller)


async def test_my_chart_is_my_patients_chart(client, world, app):
    await add_scores(app, world, [("2026-10-01T09:00:00-04:00", 12), ("2026-10-08T09:00:00-04:00", 5)])
    await add_scores(app, world, [("2026-10-01T09:00:00-04:00", 2)], patient=world.other_patient)
    mine = await chart(client, world.patient_user, None, **{"to": "2026-10-31"})
    theirs = await chart(client, world.patient_user, world.patient.id, **{"to": "2026-10-31"})
    assert mine.json() == theirs.json() and mine.json()["latest"]["total"] == 5
    other = await chart(client, world.other_patient_user, None, **{"to": "2026-10-31"})
    assert other.json()["latest"]["total"] == 2


async def test_hidden_and_missing_patients_get_the_same_404(client, world):
    hidden = await chart(client, world.clinician_b, world.patient.id)
    missing = await chart(client, world.clinician_b, uuid.uuid4())
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]


async def test_reads_and_denials_are_audited(client, world, app):
    assert (await chart(client, world.clinician, world.patient.id)).status_code == 200
    assert (await chart(client, world.patient_user, None)).status_code == 200
    assert (await chart(client, world.other_clinician, world.patient.id)).status_code == 404
    events = await rows(app, AuditEvent, AuditEvent.action == "chart.read", order_by=AuditEvent.at)
    assert [(e.actor_id, e.outcome, e.patient_id) for e in events] == [
        (world.clinician.id, "success", world.patient.id), (world.patient_user.id, "success", world.patient.id),
        (world.other_clinician.id, "denied", world.patient.id)]


# --- validation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "loc"), [
    ({"instrument": None}, ["query", "instrument"]),
    ({"instrument": "bdi"}, ["query", "instrument"]),
    ({"instrument": "GAD7"}, ["query", "instrument"]),
    ({"bucket": "year"}, ["query", "bucket"]),
    ({"bucket": ""}, ["query", "bucket"]),
    ({"from": "2026-13-01"}, ["query", "from"]),
    ({"from": "2026-11-01T00:00:00Z"}, ["query", "from"]),
    ({"from": "1700000000"}, ["query", "from"]),
    ({"to": "yesterday"}, ["query", "to"]),
    ({"from": "2026-11-02", "to": "2026-11-01"}, ["query", "to"]),
    ({"from": "2020-01-01", "to": "2025-01-05"}, ["query", "from"]),  # 1,831 days: over five years
    ({"from": "1999-12-31", "to": "2000-01-31"}, ["query", "from"]),
    ({"from": "2100-12-01", "to": "2101-01-01"}, ["query", "to"]),
    ({"from": "2020-06-01"}, ["query", "from"]),  # to defaults to today: over five years
])
async def test_invalid_queries_are_422_naming_the_parameter(client, world, params, loc):
    params = {"instrument": "gad7", **params}
    params = {key: value for key, value in params.items() if value is not None}
    path = f"/v1/patients/{world.patient.id}/chart"
    response = await client.get(path, params=params, headers=world.clinician.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert loc in [error["loc"] for error in response.json()["errors"]]


async def test_five_years_exactly_is_allowed(client, world):
    response = await chart(client, world.clinician, world.patient.id, **{"from": "2020-01-01", "to": "2025-01-04"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("zone", "at", "local_day"), [
    ("CET", "2026-07-01T22:30:00Z", "2026-07-02"),  # 00:30 CEST; PostgreSQL's abbreviation CET (+01:00) said 23:30
    ("WET", "2026-07-01T23:30:00Z", "2026-07-02"),  # 00:30 WEST
    ("EET", "2026-07-01T21:30:00Z", "2026-07-02"),  # 00:30 EEST
    ("CET", "2026-01-15T23:30:00Z", "2026-01-16"),  # winter: CET is +01:00 either way
])
async def test_a_zone_named_like_an_abbreviation_keeps_its_summer_time(client, app, world, zone, at, local_day):
    """CET, WET, EET and MET are IANA zones with summer time, which PostgreSQL would read as its fixed-offset
    abbreviations (api/zones.py). An admin's chart (one statement on PostgreSQL) and an API client's (Python) put a
    summer score half an hour after local midnight on the same, local, day."""
    async with app.state.sessions() as session:
        patient = Patient(organization_id=world.org_a.id, full_name="Zone Named", date_of_birth=dt.date(1990, 1, 1),
                          timezone=zone)
        session.add(patient)
        await session.commit()
    await add_scores(app, world, [(at, 9)], patient=patient)
    params = {"bucket": "day", "from": "2026-01-01", "to": "2026-12-31"}
    for actor in (world.admin, world.clients["client_scores_read"]):
        response = await chart(client, actor, patient.id, **params)
        assert response.status_code == 200, response.text
        assert [point["bucket_start"] for point in response.json()["points"]] == [local_day]


# --- property: every live score in range lands in exactly one bucket ------------------------------------------------

ZONES = ["UTC", "America/New_York", "America/St_Johns", "Europe/London", "Europe/Berlin", "Asia/Kolkata",
         "Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham", "Pacific/Kiritimati", "America/Sao_Paulo",
         "Africa/Casablanca", "Pacific/Apia", "CET", "WET"]
EPOCH = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
_minutes = st.integers(min_value=0, max_value=3 * 366 * 24 * 60)


def expected_start(local: dt.date, bucket: str) -> dt.date:
    """The bucket start computed another way than the service does (ISO calendar, month constructor)."""
    if bucket == "week":
        year, week, _ = local.isocalendar()
        return dt.date.fromisocalendar(year, week, 1)
    if bucket == "month":
        return dt.date(local.year, local.month, 1)
    return local


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    zone=st.sampled_from(ZONES),
    bucket=st.sampled_from(["day", "week", "month"]),
    scores=st.lists(st.tuples(_minutes, st.integers(0, 21), st.booleans()), max_size=40),
    window=st.tuples(_minutes, st.integers(0, 2 * 366 * 24 * 60)),
)
async def test_every_live_score_in_range_lands_in_exactly_one_bucket(client, app, world, zone, bucket, scores,
                                                                     window):
    async with app.state.sessions() as session:  # a patient of its own per example
        patient = Patient(organization_id=world.org_a.id, full_name="Hypo Thesis", date_of_birth=dt.date(1990, 1, 1),
                          timezone=zone)
        session.add(patient)
        await session.commit()
        patient_id = patient.id
    entries = [(EPOCH + dt.timedelta(minutes=m), total, *(["deleted"] if dead else [])) for m, total, dead in scores]
    await add_scores(app, world, entries, patient=patient)
    tz = ZoneInfo(zone)
    first = (EPOCH + dt.timedelta(minutes=window[0])).astimezone(tz).date()
    last = first + dt.timedelta(minutes=window[1]) // dt.timedelta(days=1) * dt.timedelta(days=1)

    params = {"instrument": "gad7", "bucket": bucket, "from": first.isoformat(), "to": last.isoformat()}
    response = await client.get(f"/v1/patients/{patient_id}/chart", headers=world.admin.headers, params=params)
    assert response.status_code == 200, response.text
    points = response.json()["points"]
    # An API client's read takes the ORM path, an admin's PostgreSQL's one statement (local days and instants
    # computed by PostgreSQL): the same answer and the same tag.
    by_client = await client.get(f"/v1/patients/{patient_id}/chart", params=params,
                                 headers=world.clients["client_scores_read"].headers)
    assert (by_client.json(), by_client.headers["etag"]) == (response.json(), response.headers["etag"])

    expected: dict[str, list[int]] = {}
    for at, total, *flags in entries:
        local = at.astimezone(tz).date()
        if not flags and first <= local <= last:
            expected.setdefault(expected_start(local, bucket).isoformat(), []).append(total)
    assert [p["bucket_start"] for p in points] == sorted(expected)
    for point in points:
        totals = expected[point["bucket_start"]]
        assert (point["n"], point["min"], point["max"]) == (len(totals), min(totals), max(totals))
        expected_mean = (Decimal(sum(totals)) / Decimal(len(totals))).quantize(Decimal("0.1"), ROUND_HALF_UP)
        assert point["mean"] == float(expected_mean)
    assert sum(p["n"] for p in points) == sum(len(t) for t in expected.values())


@settings(max_examples=300, deadline=None)
@given(days=st.lists(st.integers(738_000, 738_800), max_size=60).map(sorted),
       bucket=st.sampled_from(["day", "week", "month"]), start=st.integers(0, 60),
       window=st.tuples(st.integers(737_990, 738_810), st.integers(0, 800)))
def test_grouping_runs_by_bisection_is_grouping_score_by_score(days, bucket, start, window):
    """In time order local days usually only rise, and the chart then finds each bucket's run of scores by bisection;
    it must group exactly as the score-by-score walk it uses when they do not."""
    totals = [day % 22 for day in days]
    first, last = window[0], window[0] + window[1]
    runs = charts.grouped(charts.Scores(days, totals, days, ascending=True), bucket, start, first, last)
    walk = charts.grouped(charts.Scores(days, totals, days, ascending=False), bucket, start, first, last)
    assert {key: (index, list(group)) for key, (index, group) in runs.items()} == walk
    assert list(runs) == list(walk)  # the same buckets in the same order


@pytest.mark.parametrize("instants", [
    ("2026-03-05T10:00:00.000001Z", "2026-03-05T10:00:00.999999Z"),
    ("1970-01-01T00:00:00.000001Z", "1999-12-31T23:59:59.999999Z"),
    ("2061-07-28T03:14:15.926535Z", "2099-12-31T23:59:59.999999Z"),
])
async def test_instants_keep_their_microseconds(client, world, app, instants):
    """PostgreSQL sends the chart its instants as integers (a float8 epoch, rounded): every microsecond survives, as
    on the ORM path."""
    first, last = instants
    await add_scores(app, world, [(first, 4), (last, 9)])
    for caller in (world.clinician, world.clients["client_scores_read"]):  # one statement, then the ORM path
        answer = (await chart(client, caller, world.patient.id)).json()
        assert (answer["baseline"]["recorded_at"], answer["latest"]["recorded_at"]) == instants


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-10**15, 10**16), st.integers(1, 10**6), st.integers(0, 27)),
                     max_size=40))
def test_scores_out_of_time_order_are_put_back_stably(rows):
    """The one statement relies on PostgreSQL aggregating the index's order; were it not kept, the read sorts the
    three arrays together by instant, keeping the order of equal instants."""
    micros, days, totals = (list(column) for column in zip(*rows)) if rows else ([], [], [])
    expected = sorted(rows, key=lambda row: row[0])
    assert chart_queries.in_time_order(micros, days, totals) == (
        [row[0] for row in expected], [row[1] for row in expected], [row[2] for row in expected])


async def test_a_fall_back_across_midnight_puts_each_score_in_its_local_day(client, app, world):
    """St John's fell back at 00:01 until 2011: on 29 October 2006 a score at 00:00:30 local, then ten minutes later
    one at 23:10 on the 28th. Local days need not follow the scores' order; each still lands in its own day."""
    async with app.state.sessions() as session:
        patient = Patient(organization_id=world.org_a.id, full_name="Fall Back", date_of_birth=dt.date(1990, 1, 1),
                          timezone="America/St_Johns")
        session.add(patient)
        await session.commit()
    await add_scores(app, world, [("2006-10-29T02:30:30Z", 10), ("2006-10-29T02:40:00Z", 4)], patient=patient)
    params = {"instrument": "gad7", "from": "2006-10-01", "to": "2006-11-30"}
    for bucket, expected in (("day", [("2006-10-28", 4.0, 1), ("2006-10-29", 10.0, 1)]),
                             ("week", [("2006-10-23", 7.0, 2)])):
        for headers in (world.admin.headers, world.clients["client_scores_read"].headers):
            response = await client.get(f"/v1/patients/{patient.id}/chart", params={**params, "bucket": bucket},
                                        headers=headers)
            assert response.status_code == 200, response.text
            assert [(p["bucket_start"], p["mean"], p["n"]) for p in response.json()["points"]] == expected


# --- the clinical review's hand-computed cases (issue 16) ------------------------------------------------------------
# Dates are in New York: EDT (−04:00) until 2026-11-01, EST (−05:00) from then on.


async def plan_in_status(client, world, start_date: str, *statuses: str) -> dict:
    """A plan of world.patient starting on `start_date`, activated, then moved through `statuses`."""
    plan = await active_plan(client, world, start_date=start_date, goals=[])
    for status in statuses:
        assert (await set_status(client, world.clinician, plan["id"], status)).status_code == 200
    return plan


@pytest.mark.parametrize("start_date", ["2026-11-02", "2026-11-05"])  # the session on or before the start date
async def test_issue16_1_the_baseline_is_the_last_score_before_the_first_dose(client, world, app, start_date):
    plan = await plan_in_status(client, world, start_date)
    await add_session(app, world, "2026-11-02T09:00:00-05:00", plan_id=plan["id"])
    await add_scores(app, world, [
        ("2026-11-01T09:00:00-05:00", 16),  # before treatment
        ("2026-11-02T18:00:00-05:00", 8),   # nine hours after the first dose
        ("2026-11-09T09:00:00-05:00", 7),
    ])
    answer = await chart_json(client, world)
    assert answer["baseline"] == {"total": 16, "recorded_at": "2026-11-01T14:00:00Z", "pre_treatment": True}
    assert (answer["change"], answer["percent_change"], answer["response"]) == (-9, -56.3, True)
    assert answer["onset"] == 0.38  # 9 h = 0.375 days, half up


async def test_issue16_1_without_a_score_before_the_first_dose_the_first_score_is_flagged(client, world, app):
    plan = await plan_in_status(client, world, "2026-11-02")
    await add_session(app, world, "2026-11-02T09:00:00-05:00", plan_id=plan["id"])
    await add_scores(app, world, [("2026-11-02T09:00:00-05:00", 12),  # at the dose itself: not before it
                                  ("2026-11-09T09:00:00-05:00", 6)])
    answer = await chart_json(client, world)
    assert answer["baseline"] == {"total": 12, "recorded_at": "2026-11-02T14:00:00Z", "pre_treatment": False}
    assert (answer["change"], answer["percent_change"], answer["response"]) == (-6, -50.0, True)


async def test_a_response_at_the_very_instant_of_the_first_dose_counts_with_onset_zero(client, world, app):
    plan = await plan_in_status(client, world, "2026-11-02")
    await add_session(app, world, "2026-11-02T09:00:00-05:00", plan_id=plan["id"])
    await add_scores(app, world, [("2026-11-01T09:00:00-05:00", 16), ("2026-11-02T09:00:00-05:00", 8)])
    answer = await chart_json(client, world)
    assert (answer["baseline"]["total"], answer["response"], answer["onset"]) == (16, True, 0.0)
    assert answer["durability"]["first_response_at"] == "2026-11-02T14:00:00Z"


async def test_issue16_2_durability_judges_the_bucket_where_response_was_first_met(client, world, app):
    plan = await plan_in_status(client, world, "2026-10-31")
    await add_session(app, world, "2026-11-02T08:00:00-05:00", plan_id=plan["id"])
    await add_scores(app, world, [
        ("2026-10-31T09:00:00-04:00", 16),  # baseline (Saturday)
        ("2026-11-02T12:00:00-05:00", 8),   # Monday: the first response
        *[(f"2026-11-0{day}T09:00:00-05:00", 17) for day in range(3, 9)],  # six daily 17s, the same ISO week
    ])
    answer = await chart_json(client, world)
    assert answer["response"] is False
    assert answer["durability"] == {"first_response_at": "2026-11-02T17:00:00Z", "responding_now": False,
                                    "lapses": 0, "response_since": None, "days_sustained": 0.0}


async def test_issue16_3_no_response_counts_before_the_first_dose(client, world, app):
    plan = await plan_in_status(client, world, "2026-11-01")
    await add_session(app, world, "2026-11-05T09:00:00-05:00", plan_id=plan["id"])
    await add_scores(app, world, [
        ("2026-10-30T09:00:00-04:00", 16),
        ("2026-11-04T08:00:00-05:00", 8),   # meets response against 16, but before any dose
        ("2026-11-05T08:00:00-05:00", 18),  # the last score before the first dose: the baseline
        ("2026-11-19T09:00:00-05:00", 6),
    ])
    answer = await chart_json(client, world)
    assert answer["baseline"]["total"] == 18 and answer["response"] is True
    assert answer["onset"] == 14.0
    assert answer["durability"]["first_response_at"] == "2026-11-19T14:00:00Z"


async def test_issue16_4_onset_counts_only_the_chart_plans_own_sessions(client, world, app):
    march = await plan_in_status(client, world, "2026-03-01")
    await add_session(app, world, "2026-03-10T09:00:00-04:00", plan_id=march["id"])
    assert (await set_status(client, world.clinician, march["id"], "completed")).status_code == 200
    november = await plan_in_status(client, world, "2026-11-02")
    await add_scores(app, world, [("2026-11-01T09:00:00-05:00", 16), ("2026-11-13T08:00:00-05:00", 8)])
    answer = await chart_json(client, world)
    assert answer["response"] is True and answer["onset"] is None  # not 248 days from March's session

    await add_session(app, world, "2026-11-05T09:00:00-05:00", plan_id=november["id"])
    assert (await chart_json(client, world))["onset"] == 7.96  # 7 days 23 hours


@pytest.mark.parametrize("statuses", [(), ("paused",), ("completed",), ("discontinued",), ("paused", "completed")])
async def test_issue16_5_a_paused_or_finished_plan_keeps_its_baseline(client, world, app, statuses):
    await plan_in_status(client, world, "2026-11-02", *statuses)
    await add_scores(app, world, [("2026-09-01T09:00:00-04:00", 5), ("2026-11-01T09:00:00-05:00", 16),
                                  ("2026-11-10T09:00:00-05:00", 8)])
    answer = await chart_json(client, world)
    assert answer["baseline"]["total"] == 16 and answer["baseline"].get("pre_treatment") is True
    assert (answer["percent_change"], answer["response"]) == (-50.0, True)


async def test_issue16_5_the_chart_plan_is_the_most_recently_started_and_never_a_draft(client, world, app):
    await plan_in_status(client, world, "2026-06-01", "completed")
    await plan_in_status(client, world, "2026-11-02", "paused")
    await new_plan(client, world, plan_body(start_date="2026-11-11", goals=[]))  # a draft never counts
    await add_scores(app, world, [("2026-05-31T09:00:00-04:00", 20), ("2026-11-01T09:00:00-05:00", 16),
                                  ("2026-11-10T09:00:00-05:00", 8), ("2026-11-20T09:00:00-05:00", 8)])
    assert (await chart_json(client, world))["baseline"]["total"] == 16


async def test_issue16_5_plans_started_the_same_day_the_later_created_is_the_chart_plan(client, world, app):
    await plan_in_status(client, world, "2026-11-02", "completed")
    later = await plan_in_status(client, world, "2026-11-02", "completed")
    await add_session(app, world, "2026-11-05T09:00:00-05:00", plan_id=later["id"])
    await add_scores(app, world, [("2026-11-01T09:00:00-05:00", 16), ("2026-11-06T09:00:00-05:00", 8)])
    assert (await chart_json(client, world))["onset"] == 1.0


@pytest.mark.parametrize(("instrument", "totals", "percent", "response", "remission"), [
    ("gad2", (6, 3), -50.0, None, None),      # still a positive screen: a screen has no response
    ("suds", (80, 40), -50.0, None, None),
    ("gad7", (1, 0), -100.0, None, None),     # minimal at baseline: nothing to respond or remit from
    ("gad7", (3,), 0.0, None, None),          # a single pre-treatment score of 3 is no remission
    ("gad7", (4, 2), -50.0, None, None),
    ("gad7", (5, 2), -60.0, True, True),      # mild (5) is the lowest baseline judged
    ("phq9", (4, 0), -100.0, None, None),
    ("phq9", (5, 3), -40.0, False, True),
])
async def test_issue16_10_response_and_remission_only_for_gad7_and_phq9_from_mild(
    client, world, app, instrument, totals, percent, response, remission
):
    plan = await plan_in_status(client, world, "2026-11-02")
    await add_session(app, world, "2026-11-02T09:00:00-05:00", plan_id=plan["id"])
    await add_scores(app, world, list(zip(["2026-11-01T09:00:00-05:00", "2026-11-03T09:00:00-05:00"], totals)),
                     instrument=instrument)
    answer = await chart_json(client, world, instrument=instrument)
    assert (answer["percent_change"], answer["response"], answer["remission"]) == (percent, response, remission)
    if response is None:  # onset and durability rest on response
        assert answer["onset"] is None and answer["durability"] is None


@pytest.mark.parametrize(("baseline", "latest", "percent"), [
    (16, 15, -6.3), (16, 17, 6.3), (16, 9, -43.8), (8, 7, -12.5), (40, 37, -7.5), (80, 79, -1.3),
])
async def test_issue16_12_percentages_round_half_up(client, world, app, baseline, latest, percent):
    await add_scores(app, world, [("2026-10-01T09:00:00-04:00", baseline), ("2026-10-08T09:00:00-04:00", latest)],
                     instrument="suds")
    assert (await chart_json(client, world, instrument="suds"))["percent_change"] == percent


async def test_issue16_12_means_round_half_up_to_one_decimal(client, world, app):
    await add_scores(app, world, [("2026-06-01T09:00:00-04:00", 10), ("2026-06-02T09:00:00-04:00", 10),
                                  ("2026-06-03T09:00:00-04:00", 10), ("2026-06-04T09:00:00-04:00", 11),  # 10.25
                                  ("2026-06-08T09:00:00-04:00", 2), ("2026-06-09T09:00:00-04:00", 3)])   # 2.5
    weeks = buckets(await chart_json(client, world, **{"from": "2026-06-01", "to": "2026-06-30"}))
    assert weeks == {"2026-06-01": (10.3, 10, 11, 4), "2026-06-08": (2.5, 2, 3, 2)}
