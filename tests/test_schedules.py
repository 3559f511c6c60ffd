"""Assessment schedules: next due date, days overdue and 28-day adherence, in the patient's local calendar, on
hand-computed cases (the contract's "Schedules and reminders")."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.schedules import rules
from api.security.scopes import Scope
from tests.matrix import Route, by_role, cell_id, cells, check_route, on_patient
from tests.plan_helpers import new_plan, plan_body, set_status

# "Now" for every case below: 2026-11-20 12:00 UTC (a Friday). 07:00 in New York, 01:00 on the 21st in Auckland,
# 02:00 on the 20th in Honolulu.
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    from api.schedules import service

    monkeypatch.setattr(service, "utcnow", lambda: NOW)


async def set_zone(client, world, timezone: str) -> None:
    response = await client.patch(f"/v1/patients/{world.patient.id}", json={"timezone": timezone},
                                  headers=world.clinician.headers)
    assert response.status_code == 200, response.text


async def active(client, world, start: str, assessments: list[dict]) -> dict:
    plan = await new_plan(client, world, plan_body(start_date=start, assessments=assessments,
                                                   goals=[]))
    response = await set_status(client, world.clinician, plan["id"], "active")
    assert response.status_code == 200, response.text
    return response.json()


async def score(client, world, recorded_at: str, instrument: str = "gad7") -> None:
    items = {"gad7": [1] * 7, "phq9": [1] * 9, "suds": [40], "gad2": [1, 1]}[instrument]
    response = await client.post(f"/v1/patients/{world.patient.id}/scores", headers=world.clinician.headers,
                                 json={"id": str(uuid.uuid4()), "instrument": instrument, "items": items,
                                       "recorded_at": recorded_at})
    assert response.status_code == 201, response.text


async def schedule(client, actor, patient=None) -> dict:
    url = "/v1/me/schedule" if patient is None else f"/v1/patients/{patient.id}/schedule"
    response = await client.get(url, headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.json()


def line(answer: dict, instrument: str) -> dict:
    [found] = [item for item in answer["items"] if item["instrument"] == instrument]
    return found


async def test_no_scores_yet_daily_and_weekly(client, world):
    await active(client, world, "2026-11-17", [{"instrument": "gad7", "every_days": 1},
                                               {"instrument": "phq9", "every_days": 7}])
    answer = await schedule(client, world.clinician, world.patient)
    assert answer["timezone"] == "America/New_York" and answer["today"] == "2026-11-20"
    # Four local days since the start (17th–20th): four daily due dates, one weekly one; nothing done.
    assert line(answer, "gad7") == {"instrument": "gad7", "every_days": 1, "last_completed_at": None,
                                    "next_due_on": "2026-11-17", "overdue_days": 3, "adherence_28d": 0.0}
    assert line(answer, "phq9") == {"instrument": "phq9", "every_days": 7, "last_completed_at": None,
                                    "next_due_on": "2026-11-17", "overdue_days": 3, "adherence_28d": 0.0}


async def test_weekly_adherence_over_28_days(client, world):
    await active(client, world, "2026-10-01", [{"instrument": "gad7", "every_days": 7}])
    # Window: Oct 24 – Nov 20 (28 local days) holds 4 due dates. Scores on 3 distinct days in it (one twice), one on
    # Oct 23 (outside), and a PHQ-9 (another instrument).
    for at in ("2026-10-23T09:00:00-04:00", "2026-10-24T09:00:00-04:00", "2026-11-02T09:00:00-05:00",
               "2026-11-13T08:00:00-05:00", "2026-11-13T20:00:00-05:00"):
        await score(client, world, at)
    await score(client, world, "2026-11-19T09:00:00-05:00", "phq9")
    item = line(await schedule(client, world.clinician, world.patient), "gad7")
    assert item["adherence_28d"] == 0.75
    assert item["last_completed_at"] == "2026-11-14T01:00:00Z"
    assert (item["next_due_on"], item["overdue_days"]) == ("2026-11-20", 0)


async def test_daily_adherence_since_a_recent_start_rounds_half_up(client, world):
    await active(client, world, "2026-11-13", [{"instrument": "gad7", "every_days": 1}])
    # 8 local days since the start, 8 due dates; 5 days done = 0.625 → 0.63 (half up, not to even).
    for day in (13, 14, 16, 18, 19):
        await score(client, world, f"2026-11-{day}T08:00:00-05:00")
    item = line(await schedule(client, world.clinician, world.patient), "gad7")
    assert item["adherence_28d"] == 0.63
    assert (item["next_due_on"], item["overdue_days"]) == ("2026-11-20", 0)


async def test_overdue_counts_local_days_past_the_due_date(client, world):
    await active(client, world, "2026-10-01", [{"instrument": "gad7", "every_days": 7}])
    await score(client, world, "2026-11-09T21:00:00-05:00")  # local day Nov 9 (Nov 10 in UTC)
    item = line(await schedule(client, world.clinician, world.patient), "gad7")
    assert (item["next_due_on"], item["overdue_days"]) == ("2026-11-16", 4)


async def test_a_score_before_the_start_does_not_move_the_first_due_date(client, world):
    await score(client, world, "2026-11-16T09:00:00-05:00")
    await active(client, world, "2026-11-18", [{"instrument": "gad7", "every_days": 7}])
    item = line(await schedule(client, world.clinician, world.patient), "gad7")
    assert item == {"instrument": "gad7", "every_days": 7, "last_completed_at": None, "next_due_on": "2026-11-18",
                    "overdue_days": 2, "adherence_28d": 0.0}


async def test_a_plan_starting_in_the_future(client, world):
    await score(client, world, "2026-11-19T09:00:00-05:00")
    await active(client, world, "2026-12-01", [{"instrument": "gad7", "every_days": 7}])
    item = line(await schedule(client, world.clinician, world.patient), "gad7")
    assert item == {"instrument": "gad7", "every_days": 7, "last_completed_at": None, "next_due_on": "2026-12-01",
                    "overdue_days": 0, "adherence_28d": None}


async def test_auckland_a_score_after_midnight_counts_on_the_new_local_day(client, world):
    await set_zone(client, world, "Pacific/Auckland")  # UTC+13 in November
    await active(client, world, "2026-11-01", [{"instrument": "gad7", "every_days": 1}])
    await score(client, world, "2026-11-20T00:30:00+13:00")  # Nov 19 11:30 UTC, but the 20th in Auckland
    await score(client, world, "2026-11-18T23:30:00+13:00")
    answer = await schedule(client, world.patient_user)
    assert answer["today"] == "2026-11-21"  # 01:00 on the 21st there
    item = line(answer, "gad7")
    assert (item["next_due_on"], item["overdue_days"]) == ("2026-11-21", 0)
    assert item["adherence_28d"] == round(2 / 21, 2)  # 21 local days since Nov 1, two of them with a score


async def test_honolulu_an_evening_score_counts_on_the_local_day(client, world):
    await set_zone(client, world, "Pacific/Honolulu")  # UTC−10
    await active(client, world, "2026-11-01", [{"instrument": "gad7", "every_days": 7}])
    await score(client, world, "2026-11-12T20:00:00-10:00")  # Nov 13 06:00 UTC, still the 12th in Honolulu
    item = line(await schedule(client, world.patient_user), "gad7")
    assert (item["next_due_on"], item["overdue_days"]) == ("2026-11-19", 1)  # today there is the 20th


async def test_across_the_end_of_daylight_saving_time(client, world):
    # New York leaves daylight saving time on Nov 1 at 02:00; 23:30 is 03:30 UTC on Nov 1 but 04:30 UTC on Nov 2.
    await active(client, world, "2026-10-25", [{"instrument": "gad7", "every_days": 1}])
    await score(client, world, "2026-10-31T23:30:00-04:00")
    await score(client, world, "2026-11-01T23:30:00-05:00")
    item = line(await schedule(client, world.clinician, world.patient), "gad7")
    assert item["last_completed_at"] == "2026-11-02T04:30:00Z"
    assert (item["next_due_on"], item["overdue_days"]) == ("2026-11-02", 18)
    assert item["adherence_28d"] == round(2 / 27, 2)  # Oct 25 – Nov 20: 27 days, scores on two of them


async def test_retracted_scores_do_not_count(client, world):
    await active(client, world, "2026-11-01", [{"instrument": "gad7", "every_days": 7}])
    body = {"id": str(uuid.uuid4()), "instrument": "gad7", "items": [1] * 7, "recorded_at": "2026-11-18T09:00:00-05:00"}
    await client.post("/v1/me/scores", json=body, headers=world.patient_user.headers)
    await client.delete(f"/v1/me/scores/{body['id']}", headers=world.patient_user.headers)
    item = line(await schedule(client, world.patient_user), "gad7")
    assert (item["last_completed_at"], item["next_due_on"]) == (None, "2026-11-01")


@pytest.mark.parametrize("status", ["paused", "completed", "discontinued"])
async def test_without_an_active_plan_the_schedule_is_empty(client, world, status):
    plan = await active(client, world, "2026-11-01", [{"instrument": "gad7", "every_days": 7}])
    assert (await set_status(client, world.clinician, plan["id"], status, reason="BP hold")).status_code == 200
    answer = await schedule(client, world.patient_user)
    assert (answer["plan_id"], answer["items"]) == (None, [])


async def test_a_resumed_plan_has_its_schedule_back(client, world):
    plan = await active(client, world, "2026-11-01", [{"instrument": "gad7", "every_days": 7}])
    await set_status(client, world.clinician, plan["id"], "paused", reason="BP hold")
    await set_status(client, world.clinician, plan["id"], "active", reason="BP controlled")
    answer = await schedule(client, world.patient_user)
    assert answer["plan_id"] == plan["id"] and len(answer["items"]) == 1


async def test_reading_a_schedule_is_audited(client, world):
    await schedule(client, world.therapist, world.patient)
    events = (await client.get("/v1/audit-events", params={"action": "schedule.read"},
                               headers=world.admin.headers)).json()["items"]
    assert [(e["actor_id"], e["patient_id"]) for e in events] == [(str(world.therapist.id), str(world.patient.id))]


ROUTES = [
    Route("patient_schedule", "GET", lambda w: f"/v1/patients/{w.patient.id}/schedule",
          on_patient(200, scope=Scope.scores_read)),
    Route("my_schedule", "GET", lambda w: "/v1/me/schedule", by_role(admin=403, clinician=403, patient=200)),
]


@pytest.mark.parametrize(("route", "caller"), cells(ROUTES), ids=cell_id)
async def test_access(client, world, route, caller):
    await check_route(client, world, route, caller)


# --- the rules alone -------------------------------------------------------------------------------------------

days = st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 12, 31))


@settings(max_examples=300, deadline=None)
@given(start=days, today=days, every=st.integers(1, 90), done=st.sets(days, max_size=40))
def test_adherence_is_a_share_of_due_dates(start, today, every, done):
    share = rules.adherence(start, every, today, rules.LocalDays.of(done))
    window = rules.adherence_window(start, today)
    if window is None:
        assert share is None and start > today
        return
    first, last = window
    assert (last - first).days + 1 <= rules.ADHERENCE_WINDOW_DAYS and first >= start
    assert 0.0 <= share <= 1.0
    if not any(first <= day <= last for day in done):
        assert share == 0.0


@settings(max_examples=300, deadline=None)
@given(start=days, every=st.integers(1, 90), last=st.none() | days, today=days)
def test_next_due_is_never_before_the_start(start, every, last, today):
    due = rules.next_due_on(start, every, last)
    assert due >= start
    if last is not None and last >= start:
        assert due == last + dt.timedelta(days=every)
    assert rules.overdue_days(due, today) == max(0, (today - due).days)


@settings(max_examples=300, deadline=None)
@given(done=st.sets(days, max_size=40), first=days, last=days)
def test_local_days_count_the_days_of_a_window_as_a_set_does(done, first, last):
    assert rules.LocalDays.of(done).count_between(first, last) == sum(1 for day in done if first <= day <= last)
