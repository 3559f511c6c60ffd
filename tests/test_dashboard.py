"""The clinician's dashboard: the chart's outcomes and the schedule's state per patient, every order and filter,
who sees which rows, and a fixed number of statements per page whatever the panel's size."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
import zoneinfo
from zoneinfo import ZoneInfo

import pytest
from anyio import CapacityLimiter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import ARRAY, Date, DateTime, String, and_, bindparam, event, func, select, text

from api import outcomes, responses
from api.dashboard import queries, service
from api.dashboard.schemas import DashboardPage, DashboardRow, LatestScore
from api.instruments.registry import INSTRUMENTS
from models import CareTeamMember, CareTeamRole, Score
from tests.conftest import ON_POSTGRES
from tests.factories import add_patient
from tests.matrix import Route, by_role, cell_id, cells, check_route
from tests.plan_helpers import new_plan, plan_body, set_status

NOW = dt.datetime.now(dt.UTC)
GAD7 = {16: [3, 3, 2, 2, 2, 2, 2], 8: [2, 1, 1, 1, 1, 1, 1], 14: [2, 2, 2, 2, 2, 2, 2], 10: [2, 2, 2, 1, 1, 1, 1],
        3: [1, 1, 1, 0, 0, 0, 0], 20: [3, 3, 3, 3, 3, 3, 2]}


def ago(days: float) -> str:
    return (NOW - dt.timedelta(days=days)).isoformat()


def local_day(days: int) -> str:
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days)).isoformat()


async def score(client, actor, patient, total: int, days: float, instrument: str = "gad7") -> None:
    items = GAD7[total] if instrument == "gad7" else [1] * 8 + [total]
    response = await client.post(f"/v1/patients/{patient.id}/scores", headers=actor.headers, json={
        "id": str(uuid.uuid4()), "instrument": instrument, "items": items, "recorded_at": ago(days)})
    assert response.status_code == 201, response.text


async def plan_for(client, world, patient, *, start_days_ago: int = 20, every_days: int = 7) -> dict:
    plan = await new_plan(client, world, plan_body(start_date=local_day(start_days_ago), goals=[],
                                                   assessments=[{"instrument": "gad7", "every_days": every_days}]),
                          patient=patient)
    assert (await set_status(client, world.clinician, plan["id"], "active")).status_code == 200
    return plan


async def dashboard(client, actor, **params) -> dict:
    response = await client.get("/v1/dashboard", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.json()


def row_of(page: dict, patient) -> dict:
    [row] = [row for row in page["items"] if row["patient_id"] == str(patient.id)]
    return row


async def test_the_page_is_written_as_its_declared_model_serialises(client, world):
    """The page is written from the computed rows (api/responses.py), not through its model: its bytes must be the
    model's own serialisation, with rows with and without plans, scores, sessions and alerts."""
    await score(client, world.clinician, world.patient, 16, days=25.123456)
    await plan_for(client, world, world.patient, start_days_ago=20)
    await score(client, world.clinician, world.patient, 8, days=3.5)
    for sort in ("name", "alerts", "change", "last_activity"):
        response = await client.get("/v1/dashboard", params={"sort": sort, "limit": 2}, headers=world.admin.headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.content == DashboardPage.model_validate_json(response.content).model_dump_json().encode()


_instants = st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2199, 12, 30),
                         timezones=st.just(dt.UTC))
_rows = st.builds(
    DashboardRow, patient_id=st.uuids(), full_name=st.text(max_size=40), plan_status=st.none() | st.text(max_size=12),
    instrument=st.sampled_from(sorted(INSTRUMENTS)),
    latest=st.none() | st.builds(LatestScore, instrument=st.sampled_from(sorted(INSTRUMENTS)),
                                 total=st.integers(0, 80), severity=st.none() | st.sampled_from(["mild", "severe"]),
                                 recorded_at=_instants),
    baseline_total=st.none() | st.integers(0, 80), change=st.none() | st.integers(-80, 80),
    percent_change=st.none() | st.floats(-100, 10_000, allow_nan=False), trend=st.none() | st.just("stable"),
    last_session_at=st.none() | _instants, last_activity_at=st.none() | _instants,
    next_assessment_due=st.none() | st.dates(), overdue=st.booleans(),
    adherence=st.none() | st.floats(0, 100, allow_nan=False), open_alerts=st.integers(0, 9),
    urgent_alerts=st.integers(0, 9))


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(_rows, max_size=5), cursor=st.none() | st.text(max_size=20))
def test_the_pages_serialiser_writes_what_pydantic_writes(rows, cursor):
    page = DashboardPage(items=rows, next_cursor=cursor)
    assert responses.dumps(page.model_dump()) == page.model_dump_json().encode()


async def test_a_row_carries_the_charts_outcomes_and_the_schedule(client, world):
    await score(client, world.clinician, world.patient, 16, days=25)  # before the plan's start: the baseline
    await plan_for(client, world, world.patient, start_days_ago=20)
    await score(client, world.clinician, world.patient, 10, days=18)
    await score(client, world.clinician, world.patient, 8, days=3)
    row = row_of(await dashboard(client, world.clinician, sort="name"), world.patient)
    chart = (await client.get(f"/v1/patients/{world.patient.id}/chart", params={"instrument": "gad7"},
                              headers=world.clinician.headers)).json()
    assert row["baseline_total"] == chart["baseline"]["total"] == 16
    assert (row["change"], row["percent_change"]) == (chart["change"], chart["percent_change"]) == (-8, -50.0)
    assert row["latest"] == {"instrument": "gad7", "total": 8, "severity": "mild",
                             "recorded_at": chart["latest"]["recorded_at"]}
    assert row["plan_status"] == "active" and row["instrument"] == "gad7"
    assert row["trend"] == "improving"  # 8 in the last fortnight against 10 and 16 before: −5
    schedule = (await client.get(f"/v1/patients/{world.patient.id}/schedule",
                                 headers=world.clinician.headers)).json()["items"][0]
    assert row["next_assessment_due"] == schedule["next_due_on"]
    assert row["overdue"] is (schedule["overdue_days"] > 0)
    assert row["adherence"] == schedule["adherence_28d"]
    assert row["last_activity_at"] == chart["latest"]["recorded_at"]


async def test_last_activity_counts_every_instrument_when_no_score_is_recent(client, world):
    """The last activity is the latest score of any instrument, an unscheduled one older than the recent window
    included; the schedule still counts only what the plan schedules."""
    await plan_for(client, world, world.patient, start_days_ago=60, every_days=7)
    await score(client, world.clinician, world.patient, 10, days=50)
    await score(client, world.clinician, world.patient, 0, days=45, instrument="phq9")  # unscheduled, newer
    row = row_of(await dashboard(client, world.clinician, sort="name"), world.patient)
    phq9 = (await client.get(f"/v1/patients/{world.patient.id}/scores", params={"instrument": "phq9"},
                             headers=world.clinician.headers)).json()["items"][0]
    assert row["last_activity_at"] == phq9["recorded_at"]
    schedule = (await client.get(f"/v1/patients/{world.patient.id}/schedule",
                                 headers=world.clinician.headers)).json()["items"]
    assert [line["instrument"] for line in schedule] == ["gad7"]
    assert row["next_assessment_due"] == schedule[0]["next_due_on"] and row["overdue"] is True


async def test_a_scheduled_instrument_last_scored_before_the_recent_window_counts_in_the_schedule(client, world):
    """PostgreSQL looks up the last score of an instrument only when the row can use it: one the plan schedules
    (here PHQ-9, last scored 40 days ago) is found however old it is, and the row's schedule is the schedule's."""
    await score(client, world.clinician, world.patient, 0, days=40, instrument="phq9")  # total 8
    await score(client, world.clinician, world.patient, 10, days=2)  # gad7, unscheduled: recent
    plan = await new_plan(client, world, plan_body(start_date=local_day(60), goals=[], assessments=[
        {"instrument": "phq9", "every_days": 14}]))
    assert (await set_status(client, world.clinician, plan["id"], "active")).status_code == 200
    row = row_of(await dashboard(client, world.clinician, sort="name"), world.patient)
    [line] = (await client.get(f"/v1/patients/{world.patient.id}/schedule",
                               headers=world.clinician.headers)).json()["items"]
    assert line["instrument"] == "phq9" and line["last_completed_at"] is not None
    assert row["next_assessment_due"] == line["next_due_on"] and line["overdue_days"] > 20
    assert row["overdue"] is True and row["instrument"] == "phq9" and row["latest"]["total"] == 8
    gad7 = (await client.get(f"/v1/patients/{world.patient.id}/scores", params={"instrument": "gad7"},
                             headers=world.clinician.headers)).json()["items"][0]
    assert row["last_activity_at"] == gad7["recorded_at"]


async def test_each_row_is_its_own_patients_chart_and_schedule(client, world):
    """Two patients with different chart plans (instrument shown, status, first dose): every row agrees with that
    patient's own chart and schedule, whichever statements read it (PostgreSQL reads a page on the driver)."""
    from tests.session_helpers import new_session, sign

    for days, total, phq9 in ((40, 16, 20), (25, 14, 18), (12, 10, 9), (1, 8, 4)):
        await score(client, world.clinician, world.patient, total, days=days)
        items = [min(3, max(0, phq9 - 3 * i)) for i in range(8)] + [0]  # item 9 (self-harm) 0: no urgent alert
        response = await client.post(f"/v1/patients/{world.patient.id}/scores", headers=world.clinician.headers,
                                     json={"id": str(uuid.uuid4()), "instrument": "phq9", "items": items,
                                           "recorded_at": ago(days)})
        assert response.status_code == 201, response.text
    plan = await new_plan(client, world, plan_body(start_date=local_day(30), goals=[], assessments=[
        {"instrument": "phq9", "every_days": 7}, {"instrument": "gad7", "every_days": 14}]))
    assert (await set_status(client, world.clinician, plan["id"], "active")).status_code == 200
    signed = await new_session(client, world, plan)  # two days ago: the first dose
    assert (await sign(client, world.clinician, signed["id"], signed["etag"])).status_code == 200
    for days, total in ((30, 20), (9, 3)):
        await score(client, world.clinician, world.fresh_patient, total, days=days)
    other = await plan_for(client, world, world.fresh_patient, start_days_ago=20)
    await set_status(client, world.clinician, other["id"], "paused", reason="BP hold")

    page = await dashboard(client, world.clinician, sort="name")
    expected = {str(world.patient.id): ("phq9", "active"), str(world.fresh_patient.id): ("gad7", "paused")}
    assert {row["patient_id"]: (row["instrument"], row["plan_status"]) for row in page["items"]} == expected
    for row in page["items"]:
        chart = (await client.get(f"/v1/patients/{row['patient_id']}/chart", params={"instrument": row["instrument"]},
                                  headers=world.clinician.headers)).json()
        assert (row["baseline_total"], row["change"], row["percent_change"]) == (
            chart["baseline"]["total"], chart["change"], chart["percent_change"])
        assert row["latest"]["total"] == chart["latest"]["total"]
        assert row["last_session_at"] == (signed["started_at"] if row["patient_id"] == str(world.patient.id) else None)
        schedule = (await client.get(f"/v1/patients/{row['patient_id']}/schedule",
                                     headers=world.clinician.headers)).json()["items"]
        if row["plan_status"] == "active":
            assert row["next_assessment_due"] == min(line["next_due_on"] for line in schedule)
            assert row["overdue"] is any(line["overdue_days"] > 0 for line in schedule)
        else:
            assert (row["next_assessment_due"], row["overdue"], row["adherence"]) == (None, False, None)
    mine = row_of(page, world.patient)
    # The baseline is the last PHQ-9 before the signed session two days ago (12 days ago: 9), not the first (20).
    assert (mine["baseline_total"], mine["latest"]["total"]) == (9, 4)


ZONES = ["Pacific/Kiritimati", "Pacific/Pago_Pago", "America/St_Johns", "Asia/Kathmandu", "Europe/London",
         "America/New_York", "Australia/Lord_Howe", "CET"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(zone=st.sampled_from(ZONES), every=st.integers(1, 10), start_days_ago=st.integers(-2, 40),
       scores=st.lists(st.tuples(st.integers(-1, 36 * 24), st.sampled_from(["gad7", "phq9"]), st.integers(0, 21)),
                       max_size=30))
async def test_adherence_and_trend_agree_with_the_schedule_and_the_scores(client, app, world, zone, every,
                                                                           start_days_ago, scores):
    """Random recent histories in zones from UTC−11 to UTC+14, scores up to an hour ahead of the clock: the row's
    adherence is the schedule's (computed another way, from instants in Python), and its trend the scores'."""
    name = f"Prop {uuid.uuid4().hex}"
    async with app.state.sessions() as session:
        patient = await add_patient(session, world.org_a, name, team=[world.clinician.user])
        patient.timezone = zone
        await session.commit()
    start = (dt.datetime.now(ZoneInfo(zone)).date() - dt.timedelta(days=start_days_ago)).isoformat()
    plan = await new_plan(client, world, plan_body(start_date=start, goals=[], assessments=[
        {"instrument": "gad7", "every_days": every}, {"instrument": "phq9", "every_days": every + 1}]), patient=patient)
    assert (await set_status(client, world.clinician, plan["id"], "active")).status_code == 200
    now = dt.datetime.now(dt.UTC)
    # Half past an hour: never within minutes of a fortnight's edge, which fall on whole days before the request.
    entries = [(now - dt.timedelta(hours=hours, minutes=30), code, total) for hours, code, total in scores]
    async with app.state.sessions() as session:
        for at, code, total in entries:
            # Items summing to the total; PHQ-9's item 9 stays 0 (no urgent alert).
            items = [min(3, max(0, total - 3 * i)) for i in range(len(INSTRUMENTS[code].items))]
            session.add(Score(id=uuid.uuid4(), patient_id=patient.id, instrument=code, items=items,
                              total=total, severity=INSTRUMENTS[code].severity(total), recorded_at=at,
                              recorded_offset_minutes=0, received_at=now, source="patient",
                              entered_by=world.clinician.id, updated_at=now))
        await session.commit()
    [row] = (await dashboard(client, world.clinician, q=name))["items"]
    schedule = (await client.get(f"/v1/patients/{patient.id}/schedule", headers=world.clinician.headers)).json()
    shares = [round(item["adherence_28d"] * 100) for item in schedule["items"] if item["adherence_28d"] is not None]
    assert row["adherence"] == (outcomes.half_up(sum(shares), 100 * len(shares), places=2) if shares else None)
    gad7 = [(at, total) for at, code, total in entries if code == "gad7"]
    assert row["trend"] == outcomes.trend(INSTRUMENTS["gad7"], gad7, dt.datetime.now(dt.UTC))


def _clock_changes(zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """The instants in [start, end) at which the zone's UTC offset changes (to the second; zones change on one)."""
    changes, day = [], dt.timedelta(days=1)
    at, offset = start, start.astimezone(zone).utcoffset()
    while at < end:
        if (following := (at + day).astimezone(zone).utcoffset()) != offset:
            before, after = at, at + day
            while after - before > dt.timedelta(seconds=1):
                middle = before + (after - before) / 2
                before, after = (middle, after) if middle.astimezone(zone).utcoffset() == offset else (before, middle)
            changes.append(after)
            offset = following
        at += day
    return changes


@pytest.mark.skipif(not ON_POSTGRES, reason="the day starts are PostgreSQL's way to a score's local day")
async def test_each_local_day_starts_where_zoneinfo_starts_it_in_every_zone(app):
    """On PostgreSQL a page finds a recent score's local day among its zone's day starts (queries.day_starts) rather
    than converting the score. Against zoneinfo's local date, in every zone both know: a microsecond before, at and
    after every clock change from now to the end of next year and each local midnight of the days around it (as
    zoneinfo places it; at 00:00 → 01:00 changes, the change), and noon today in every zone."""
    async with app.state.sessions() as session:
        known = set((await session.exec(text("select name from pg_timezone_names"))).scalars())
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    until = dt.datetime(now.year + 2, 1, 1, tzinfo=dt.UTC)
    tick, day = dt.timedelta(microseconds=1), dt.timedelta(days=1)
    cases: list[tuple[str, dt.date, dt.datetime]] = []
    for name in sorted(known & zoneinfo.available_timezones()):
        zone = ZoneInfo(name)
        cases.append((name, now.date() - 10 * day, now.replace(hour=12)))
        for change in _clock_changes(zone, now, until):
            local = change.astimezone(zone).date()
            origin = local - 10 * day
            midnights = [dt.datetime.combine(local + k * day, dt.time(), zone).astimezone(dt.UTC) for k in (-1, 0, 1, 2)]
            cases += [(name, origin, at + step) for at in (change, *midnights) for step in (-tick, 0 * tick, tick)]
    wanted = func.unnest(bindparam("zones", type_=ARRAY(String)), bindparam("origins", type_=ARRAY(Date)),
                         bindparam("instants", type_=ARRAY(DateTime(timezone=True)))
                         ).table_valued("timezone", "origin", "at").render_derived("wanted")
    zones = select(wanted.c.timezone, wanted.c.origin).distinct().subquery("zones")
    starts = queries.day_starts(zones, zones.c.origin).subquery("starts")
    stmt = (select(wanted.c.timezone, wanted.c.origin, wanted.c.at, func.width_bucket(wanted.c.at, starts.c.starts))
            .join_from(wanted, starts, and_(starts.c.timezone == wanted.c.timezone, starts.c.origin == wanted.c.origin)))
    columns = [list(column) for column in zip(*cases, strict=True)]
    async with app.state.sessions() as session:
        found = (await session.exec(stmt, params={"zones": columns[0], "origins": columns[1],
                                                  "instants": columns[2]})).all()
    assert len(found) == len(cases) > 2000
    # (zone, the instant in its zone, the day after `origin` zoneinfo says, the day PostgreSQL found)
    wrong = [(name, local.isoformat(), expected, bucket) for name, origin, at, bucket in found
             if bucket != (expected := ((local := at.astimezone(ZoneInfo(name))).date() - origin).days)]
    assert not wrong, wrong[:10]


async def test_the_baseline_at_an_ambiguous_local_midnight_is_the_charts(client, app, world):
    """Without a signed session, treatment begins at the end of the plan's start date. In Havana that end can come
    twice: on 1 November 2026 clocks go back from 01:00 to 00:00, so local midnight is 04:00 and again 05:00 UTC.
    The chart (Python's zoneinfo) takes the first; PostgreSQL, which picks each row's baseline in the page's
    statement, resolves such a time to the second. The row must still show the chart's baseline: the score before
    04:00, not the one between the two midnights."""
    name = f"Havana {uuid.uuid4().hex}"
    async with app.state.sessions() as session:
        patient = await add_patient(session, world.org_a, name, team=[world.clinician.user])
        patient.timezone = "America/Havana"
        await session.commit()
    plan = await new_plan(client, world, plan_body(start_date="2026-10-31", goals=[], assessments=[
        {"instrument": "gad7", "every_days": 7}]), patient=patient)
    assert (await set_status(client, world.clinician, plan["id"], "active")).status_code == 200
    for recorded_at, total in (("2026-10-31T12:00:00Z", 16), ("2026-11-01T04:30:00Z", 10),
                               ("2026-11-10T12:00:00Z", 8)):
        response = await client.post(f"/v1/patients/{patient.id}/scores", headers=world.clinician.headers, json={
            "id": str(uuid.uuid4()), "instrument": "gad7", "items": GAD7[total], "recorded_at": recorded_at})
        assert response.status_code == 201, response.text
    chart = (await client.get(f"/v1/patients/{patient.id}/chart", params={"instrument": "gad7"},
                              headers=world.clinician.headers)).json()
    for params in ({"sort": "name"}, {"q": name}):
        row = row_of(await dashboard(client, world.clinician, **params), patient)
        assert (row["baseline_total"], row["change"]) == (chart["baseline"]["total"], chart["change"]) == (16, -8)


async def test_a_patient_without_plan_or_scores(client, world):
    row = row_of(await dashboard(client, world.clinician), world.fresh_patient)
    assert {key: row[key] for key in ("plan_status", "latest", "baseline_total", "change", "percent_change", "trend",
                                      "last_session_at", "next_assessment_due", "overdue", "adherence",
                                      "open_alerts", "urgent_alerts")} == {
        "plan_status": None, "latest": None, "baseline_total": None, "change": None, "percent_change": None,
        "trend": None, "last_session_at": None, "next_assessment_due": None, "overdue": False, "adherence": None,
        "open_alerts": 0, "urgent_alerts": 0}
    assert row["instrument"] == "gad7"


async def test_a_paused_plan_keeps_its_baseline_but_has_no_schedule(client, world):
    await score(client, world.clinician, world.patient, 16, days=25)
    plan = await plan_for(client, world, world.patient, start_days_ago=20)
    await score(client, world.clinician, world.patient, 8, days=3)
    await set_status(client, world.clinician, plan["id"], "paused", reason="BP hold")
    row = row_of(await dashboard(client, world.clinician), world.patient)
    assert (row["plan_status"], row["baseline_total"], row["change"]) == ("paused", 16, -8)
    assert (row["next_assessment_due"], row["overdue"], row["adherence"]) == (None, False, None)


async def test_who_sees_which_rows(client, world):
    names = lambda page: sorted(row["full_name"] for row in page["items"])  # noqa: E731
    assert names(await dashboard(client, world.clinician)) == ["Finn Fresh", "Pat Patient"]
    assert names(await dashboard(client, world.therapist)) == ["Pat Patient"]
    assert names(await dashboard(client, world.other_clinician)) == ["Quinn Other"]
    assert names(await dashboard(client, world.admin)) == ["Finn Fresh", "Pat Patient", "Quinn Other"]
    assert names(await dashboard(client, world.admin_b)) == ["Bo Bee"]
    for actor in (world.clinician_b, world.admin_b):
        assert str(world.patient.id) not in (await client.get("/v1/dashboard", headers=actor.headers)).text


ROUTES = [Route("dashboard", "GET", lambda w: "/v1/dashboard", by_role(admin=200, clinician=200, patient=403))]


@pytest.mark.parametrize(("route", "caller"), cells(ROUTES), ids=cell_id)
async def test_access(client, world, route, caller):
    await check_route(client, world, route, caller)


# --- orders, filters and pages -----------------------------------------------------------------------------------


async def panel_of_four(client, world, app) -> dict[str, object]:
    """Four patients on the clinician's panel with distinct alerts, change and activity."""
    async with app.state.sessions() as session:
        made = {name: await add_patient(session, world.org_a, name, team=[world.clinician.user])
                for name in ("Ann Urgent", "Bob Worse", "Cy Quiet", "Di Better")}
        await session.commit()
    for name, patient in made.items():
        await plan_for(client, world, patient, start_days_ago=30)
    await score(client, world.clinician, made["Ann Urgent"], 1, days=2, instrument="phq9")  # item 9: urgent alert
    await score(client, world.clinician, made["Bob Worse"], 10, days=20)
    await score(client, world.clinician, made["Bob Worse"], 20, days=1)  # +10, worsening
    await score(client, world.clinician, made["Di Better"], 14, days=20)
    await score(client, world.clinician, made["Di Better"], 3, days=5)  # −11, improving
    await score(client, world.clinician, made["Cy Quiet"], 10, days=40)  # long ago: overdue since
    return made


async def every_page(client, actor, **params) -> list[str]:
    names, cursor = [], None
    while True:
        page = await dashboard(client, actor, limit=1, **params, **({"cursor": cursor} if cursor else {}))
        names += [row["full_name"] for row in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return names


@pytest.mark.parametrize(("params", "expected"), [
    ({"sort": "alerts"}, ["Ann Urgent", "Bob Worse", "Cy Quiet", "Di Better", "Finn Fresh", "Pat Patient"]),
    ({"sort": "change"}, ["Bob Worse", "Cy Quiet", "Di Better", "Ann Urgent", "Finn Fresh", "Pat Patient"]),
    ({"sort": "last_activity"}, ["Bob Worse", "Ann Urgent", "Di Better", "Cy Quiet", "Finn Fresh", "Pat Patient"]),
    ({"sort": "name"}, ["Ann Urgent", "Bob Worse", "Cy Quiet", "Di Better", "Finn Fresh", "Pat Patient"]),
    ({"trend": "worsening"}, ["Bob Worse"]),
    ({"trend": "improving", "sort": "name"}, ["Di Better"]),
    ({"overdue": "true", "sort": "name"}, ["Ann Urgent", "Cy Quiet"]),
    ({"q": "B", "sort": "change"}, ["Bob Worse", "Di Better"]),
    ({"q": "ter", "sort": "name"}, ["Di Better"]),
])
async def test_orders_filters_and_pages(client, world, app, params, expected):
    await panel_of_four(client, world, app)
    assert [row["full_name"] for row in (await dashboard(client, world.clinician, **params))["items"]] == expected
    assert await every_page(client, world.clinician, **params) == expected  # one row a page, nothing twice


@pytest.mark.parametrize("sort", ["alerts", "change", "last_activity"])
async def test_a_cursor_whose_patient_id_is_not_one_is_422(client, world, sort):
    from api.pagination import encode_position

    forged = encode_position([0, 0, "Ann", "not-a-patient-id"])
    response = await client.get("/v1/dashboard", params={"sort": sort, "cursor": forged},
                                headers=world.clinician.headers)
    assert response.status_code == 422, response.text


async def test_change_sorts_a_rise_first_and_rows_without_change_last(client, world, app):
    made = await panel_of_four(client, world, app)
    rows = (await dashboard(client, world.clinician, sort="change"))["items"]
    assert [(row["full_name"], row["change"]) for row in rows[:3]] == [("Bob Worse", 10), ("Cy Quiet", 0),
                                                                       ("Di Better", -11)]
    assert all(row["change"] is None for row in rows[3:])
    assert made


async def test_alerts_count_open_and_urgent(client, world, app):
    made = await panel_of_four(client, world, app)
    row = row_of(await dashboard(client, world.clinician), made["Ann Urgent"])
    assert (row["open_alerts"], row["urgent_alerts"]) == (1, 1)
    [alert] = (await client.get("/v1/alerts", params={"patient_id": str(made["Ann Urgent"].id)},
                                headers=world.clinician.headers)).json()["items"]
    await client.post(f"/v1/alerts/{alert['id']}/acknowledge", json={"note": "called"}, headers=world.clinician.headers)
    row = row_of(await dashboard(client, world.clinician), made["Ann Urgent"])
    assert (row["open_alerts"], row["urgent_alerts"]) == (0, 0)


@pytest.mark.parametrize("params", [
    {"sort": "worst"}, {"limit": 0}, {"limit": 10_000}, {"cursor": "not a cursor"}, {"trend": "up"},
    {"overdue": "maybe"}, {"sort": "alerts", "cursor": "WyJ4Il0"}, {"sort": "change", "cursor": "WzEsICJhIl0"},
])
async def test_bad_input_is_422(client, world, params):
    response = await client.get("/v1/dashboard", params=params, headers=world.clinician.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("params", [{"sort": "name"}, {}, {"sort": "change"}, {"sort": "name", "overdue": "false"}],
                         ids=["by-name", "by-alerts", "by-change", "filtered"])
async def test_reading_the_dashboard_is_audited_per_row(client, world, params):
    """Once per row shown, whichever statement writes it (on PostgreSQL, the read's own when the database pages the
    rows, else one after the page is chosen)."""
    page = await dashboard(client, world.clinician, **params)
    events = (await client.get("/v1/audit-events", params={"action": "dashboard.read"},
                               headers=world.admin.headers)).json()["items"]
    assert sorted(e["patient_id"] for e in events) == sorted([str(world.patient.id), str(world.fresh_patient.id)])
    # Time-ordered ids (UUIDv7) everywhere; PostgreSQL's bulk rows rise in the page's order, so they land at the
    # primary key's right edge one after the other.
    assert {uuid.UUID(e["id"]).version for e in events} == {7}
    if ON_POSTGRES:
        assert [e["patient_id"] for e in sorted(events, key=lambda e: uuid.UUID(e["id"]))] == [
            row["patient_id"] for row in page["items"]]


@pytest.mark.parametrize("sort", ["name", "alerts", "change"])
async def test_paging_audits_each_row_shown_once_and_never_the_look_ahead(client, world, app, sort):
    """A page reads one row more than it shows (to know whether another follows): on PostgreSQL that row's inputs
    are read in the same statement, but only the rows shown are audited."""
    made = await panel_of_four(client, world, app)
    page = await dashboard(client, world.clinician, sort=sort, limit=1)
    [shown] = page["items"]
    assert page["next_cursor"] is not None

    async def audited() -> list[str]:
        return [e["patient_id"] for e in (await client.get(
            "/v1/audit-events", params={"action": "dashboard.read", "limit": 100},
            headers=world.admin.headers)).json()["items"]]

    assert await audited() == [shown["patient_id"]]
    await every_page(client, world.clinician, sort=sort)
    panel = [str(p.id) for p in (*made.values(), world.patient, world.fresh_patient)]
    assert sorted(await audited()) == sorted([shown["patient_id"], *panel])


# --- cost ------------------------------------------------------------------------------------------------------


async def statements_for(client, app, actor, monkeypatch, **params) -> int:
    """Statements a dashboard request runs: through SQLAlchemy and, on PostgreSQL, on the driver
    (api/statements.py)."""
    from api.statements import DriverStatement

    executed = []

    def count(_connection, _cursor, statement, *_args) -> None:
        # Not the process's periodic reread of token revocations (api/security/revocation.py), which may fall
        # within any request.
        if "access_revocation" not in statement:
            executed.append(1)

    run = DriverStatement._run

    async def counted(self, engine, method, parameters):
        if "access_revocation" not in self.sql:
            executed.append(1)
        return await run(self, engine, method, parameters)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    monkeypatch.setattr(DriverStatement, "_run", counted)
    try:
        await dashboard(client, actor, **params)
    finally:
        event.remove(engine, "before_cursor_execute", count)
        monkeypatch.undo()
    return len(executed)


# On PostgreSQL the orders the database pages take one statement (page, inputs, scores shown and audit rows); a
# filter reads the panel, then the inputs (and audits the rows it shows, none here).
@pytest.mark.parametrize(("params", "on_postgres"), [({"sort": "name"}, 1), ({"sort": "alerts"}, 1),
                                                     ({"sort": "name", "trend": "worsening"}, 2)])
async def test_a_page_costs_the_same_statements_for_5_and_500_patients(client, world, app, monkeypatch, params,
                                                                       on_postgres):
    from tests.factories import add_user
    from models import Role

    counts = []
    for size in (5, 500):
        async with app.state.sessions() as session:
            clinician = await add_user(session, world.org_a, Role.clinician, f"Panel {size}")
            patients = [await add_patient(session, world.org_a, f"P{size}-{i:03d}") for i in range(size)]
            session.add_all([CareTeamMember(patient_id=p.id, user_id=clinician.id, role=CareTeamRole.prescriber)
                             for p in patients])
            await session.commit()
        from tests.factories import Actor, token_for

        actor = Actor(clinician, token_for(app, clinician))
        # A plan and scores for a few, so that every statement has rows to read.
        for patient in patients[:3]:
            await client.put(f"/v1/patients/{patient.id}/care-team/{world.clinician.id}", json={"role": "prescriber"},
                             headers=world.admin.headers)
            await plan_for(client, world, patient)
            await score(client, world.clinician, patient, 10, days=2)
        counts.append(await statements_for(client, app, actor, monkeypatch, limit=100, **params))
    # SQLite: the panel, four reads of inputs and three of scores, the audit rows.
    assert counts[0] == counts[1] == (on_postgres if ON_POSTGRES else counts[0]) <= 9, counts


async def test_a_process_computes_a_few_pages_at_a_time_first_come_first_served(client, world, app, monkeypatch):
    """Requests beyond the limit wait for a free slot (app.state.dashboard_pages) instead of all being computed at
    once; every one is answered."""
    app.state.dashboard_pages = CapacityLimiter(2)
    inside = peak = 0
    compute = service.dashboard

    async def counted(*args, **kwargs):
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        try:
            await asyncio.sleep(0.05)  # long enough for every request to have arrived
            return await compute(*args, **kwargs)
        finally:
            inside -= 1

    monkeypatch.setattr(service, "dashboard", counted)
    answers = await asyncio.gather(*[client.get("/v1/dashboard", headers=world.clinician.headers) for _ in range(5)])
    assert [answer.status_code for answer in answers] == [200] * 5
    assert peak == 2
