"""The progress report: a PDF that opens, names the patient and the latest totals, charts the scheduled
instruments, lists signed sessions and, for the care team only, notes, warnings and open alerts; who may fetch
it, its period, its headers and its audit trail."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import re
import threading
import time
import uuid
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from models import AuditEvent
from tests.matrix import Route, cell_id, cells, check_route, on_patient
from tests.plan_helpers import rows
from tests.session_helpers import active_plan, add_addendum, new_session, sign
from tests.test_charts import add_scores

NOTE = "Vivid imagery at 20 min; reassured, settled by 40 min"
ADDENDUM = "Called next day: slept well, no nausea"
SUITABILITY_NOTE = "BP controlled; no psychosis history"
NEW_YORK = ZoneInfo("America/New_York")  # the world's patients' zone


# --- helpers ----------------------------------------------------------------------------------------------------


def ago(days: int, clock: str = "09:00") -> str:
    """An instant `days` before today at a New York wall-clock time (the world's patients live there)."""
    when = dt.datetime.now(NEW_YORK).date() - dt.timedelta(days=days)
    return dt.datetime.fromisoformat(f"{when}T{clock}:00").replace(
        tzinfo=dt.timezone(dt.timedelta(hours=-5))).isoformat()


def day(value: dt.date) -> str:
    return f"{value.day} {value:%b %Y}"


async def dosed(client, world, plan: dict, days_ago: int, *, signed: bool = True, **overrides) -> dict:
    """A session of world.patient under `plan`, dosed `days_ago` days ago at 10:00 New York time (standard
    time), recorded through the API; signed unless told otherwise."""
    start = dt.datetime.fromisoformat(ago(days_ago, "10:00"))

    def at(minutes: int) -> str:
        return (start + dt.timedelta(minutes=minutes)).isoformat()

    draft = await new_session(client, world, plan, started_at=at(0), ended_at=at(130), **{
        "vitals": [{"at": at(-5), "phase": "pre", "systolic": 128, "diastolic": 82, "heart_rate": 74, "spo2": 98}],
        "discharge": {"at": at(130), "criteria_met": True}, **overrides})
    if not signed:
        return draft
    response = await sign(client, world.clinician, draft["id"])
    assert response.status_code == 200, response.text
    return response.json()


async def report(client, actor, patient_id, **params):
    return await client.get(f"/v1/patients/{patient_id}/report", params=params, headers=actor.headers)


def pdf_text(response) -> tuple[PdfReader, str]:
    assert response.status_code == 200, response.text
    document = PdfReader(io.BytesIO(response.content))
    return document, "\n".join(page.extract_text() for page in document.pages)


def flat(value: str) -> str:
    """Extracted text with line breaks and runs of spaces made single spaces (table cells wrap)."""
    return re.sub(r"\s+", " ", value)


async def treated(client, app, world) -> dict:
    """world.patient in treatment: an active plan scheduling GAD-7 and PHQ-9, a month of scores of each, and one
    signed session with a clinician's note, an addendum and a warning (a dose above the plan's), whose signing
    raised an alert."""
    plan = await active_plan(client, world)
    await add_scores(app, world, [(ago(30), 16), (ago(20), 12), (ago(10), 9), (ago(1), 6)])
    await add_scores(app, world, [(ago(30), 18), (ago(15), 11), (ago(2), 7)], instrument="phq9")
    draft = await new_session(client, world, plan, dose_mg=50.0, notes=NOTE)
    signed = await sign(client, world.clinician, draft["id"])
    assert signed.status_code == 200, signed.text
    assert signed.json()["warnings"], "the session needs a warning for these tests"
    assert (await add_addendum(client, world.clinician, draft["id"], ADDENDUM)).status_code == 201
    alerts = await client.get("/v1/alerts", params={"patient_id": str(world.patient.id), "status": "open"},
                              headers=world.clinician.headers)
    assert alerts.json()["items"], "signing a session with warnings raises an alert"
    return {"plan": plan, "session": signed.json(), "alerts": alerts.json()["items"]}


async def latest(client, actor, patient_id, instrument: str) -> dict:
    response = await client.get(f"/v1/patients/{patient_id}/chart", params={"instrument": instrument},
                                headers=actor.headers)
    return response.json()["latest"]


def latest_line(point: dict) -> str:
    """How the report states a latest score: its total and its local day (New York)."""
    at = dt.datetime.fromisoformat(point["recorded_at"]).astimezone(NEW_YORK)
    return f"{point['total']} on {day(at.date())}"


# --- the document ---------------------------------------------------------------------------------------------


async def test_the_care_teams_report_opens_and_holds_everything(client, app, world):
    seeded = await treated(client, app, world)
    response = await report(client, world.clinician, world.patient.id)
    document, raw = pdf_text(response)
    text = flat(raw)
    assert len(document.pages) >= 1
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert "Progress report" in text and world.patient.full_name in text
    assert document.metadata.title == f"Progress report: {world.patient.full_name}"
    for instrument in ("gad7", "phq9"):
        assert latest_line(await latest(client, world.clinician, world.patient.id, instrument)) in text
    assert "GAD-7" in text and "PHQ-9" in text
    assert seeded["plan"]["title"] in text and "Remission of anxiety" in text and "Dr. Rivera" in text
    assert "50 mg" in text and "18" in text  # the session's dose and CADSS
    assert flat(seeded["session"]["warnings"][0]["message"]) in text
    assert NOTE in text and ADDENDUM in text and SUITABILITY_NOTE in text
    assert "Open alerts" in text and flat(seeded["alerts"][0]["message"]) in text
    assert "Care-team copy" in text


async def test_the_patients_own_report_leaves_out_clinician_only_content(client, app, world):
    seeded = await treated(client, app, world)
    _, raw = pdf_text(await report(client, world.patient_user, world.patient.id))
    text = flat(raw)
    assert world.patient.full_name in text and "Patient copy" in text
    assert latest_line(await latest(client, world.patient_user, world.patient.id, "gad7")) in text
    assert "50 mg" in text  # the signed session itself is theirs to see
    for hidden in (NOTE, ADDENDUM, SUITABILITY_NOTE, "Warnings", "Open alerts",
                   flat(seeded["session"]["warnings"][0]["message"]), flat(seeded["alerts"][0]["message"])):
        assert hidden not in text, hidden


async def test_the_baseline_says_whether_it_precedes_the_first_dose(client, app, world):
    await add_scores(app, world, [(ago(12), 16), (ago(5), 8)])
    taken = day(dt.datetime.now(NEW_YORK).date() - dt.timedelta(days=12))
    _, text = pdf_text(await report(client, world.clinician, world.patient.id))
    assert f"16 on {taken} (first score on record)" in flat(text)

    await dosed(client, world, await active_plan(client, world), 10)
    _, text = pdf_text(await report(client, world.clinician, world.patient.id))
    assert f"16 on {taken} (before the first dose)" in flat(text)


async def test_every_scheduled_instrument_is_charted_and_gad7_without_a_schedule(client, app, world):
    await add_scores(app, world, [(ago(5), 11)])
    _, text = pdf_text(await report(client, world.clinician, world.patient.id))
    assert "GAD-7 · 1 score in the period" in flat(text) and "PHQ-9" not in text
    assert "No treatment plan has been started." in flat(text)

    await active_plan(client, world, assessments=[{"instrument": "phq9", "every_days": 14},
                                                  {"instrument": "suds", "every_days": 7}])
    _, text = pdf_text(await report(client, world.clinician, world.patient.id))
    assert "PHQ-9 · 0 scores in the period" in flat(text) and "SUDS · 0 scores in the period" in flat(text)
    assert "GAD-7 ·" not in flat(text)


async def test_the_period_selects_sessions_and_defaults_to_the_last_year(client, app, world):
    plan = await active_plan(client, world)
    await dosed(client, world, plan, 400)
    await dosed(client, world, plan, 3)
    await dosed(client, world, plan, 2, signed=False)  # a draft: never in a report
    today = dt.datetime.now(NEW_YORK).date()

    _, text = pdf_text(await report(client, world.clinician, world.patient.id))
    assert f"{day(today - dt.timedelta(days=365))} – {day(today)}" in flat(text)
    assert "Signed sessions only, 1 session." in flat(text)

    window = {"from": (today - dt.timedelta(days=500)).isoformat(), "to": (today - dt.timedelta(days=300)).isoformat()}
    _, text = pdf_text(await report(client, world.clinician, world.patient.id, **window))
    assert "Signed sessions only, 1 session." in flat(text)
    assert day(today - dt.timedelta(days=400)) in flat(text) and day(today - dt.timedelta(days=3)) not in flat(text)


async def test_stored_text_prints_as_written_never_as_markup(client, app, world):
    title = "Plan <b>A</b> & <font size=40>B</font>"
    plan = await active_plan(client, world, title=title)
    draft = await new_session(client, world, plan, notes="Line one <br/> & <i>two</i>\nLine three")
    assert (await sign(client, world.clinician, draft["id"])).status_code == 200
    _, text = pdf_text(await report(client, world.clinician, world.patient.id))
    assert title in flat(text) and "Line one <br/> & <i>two</i>" in flat(text) and "Line three" in text


async def test_a_year_of_daily_scores_of_two_instruments_spans_pages_with_their_numbers(client, app, world):
    plan = await active_plan(client, world)
    await add_scores(app, world, [(ago(days), 6 + days % 10) for days in range(365)])
    await add_scores(app, world, [(ago(days, "20:00"), 5 + days % 12) for days in range(365)], instrument="phq9")
    doses = range(1, 365, 14)
    for days in doses:
        await dosed(client, world, plan, days)
    document, text = pdf_text(await report(client, world.clinician, world.patient.id))
    pages = len(document.pages)
    assert pages >= 3 and f"Page 1 of {pages}" in text and f"Page {pages} of {pages}" in text
    assert "GAD-7 · 365 scores in the period" in flat(text) and "PHQ-9 · 365 scores in the period" in flat(text)
    assert f"Signed sessions only, {len(doses)} sessions." in flat(text)


async def test_names_outside_latin_1_print_as_written(client, app, world):
    name = "Zoë Łukasiewicz-Þórsdóttir Ἀλέξανδρος"
    response = await client.patch(f"/v1/patients/{world.patient.id}", json={"full_name": name},
                                  headers=world.clinician.headers)
    assert response.status_code == 200, response.text
    _, text = pdf_text(await report(client, world.clinician, world.patient.id))
    assert name in text


async def test_drawing_runs_off_the_event_loop(client, app, world, monkeypatch):
    from api.reports import render

    threads = []
    draw = render.pdf

    def watched(data):
        threads.append(threading.get_ident())
        return draw(data)

    monkeypatch.setattr(render, "pdf", watched)
    assert (await report(client, world.clinician, world.patient.id)).status_code == 200
    assert len(threads) == 1 and threads[0] != threading.get_ident()


async def test_at_most_concurrent_renders_reports_are_drawn_at_once(client, app, world, monkeypatch):
    from api.reports import render, service

    drawing, most = 0, 0
    lock = threading.Lock()
    draw = render.pdf

    def watched(data):
        nonlocal drawing, most
        with lock:
            drawing += 1
            most = max(most, drawing)
        try:
            time.sleep(0.3)  # long enough for all five requests to be drawing at once, were they let
            return draw(data)
        finally:
            with lock:
                drawing -= 1

    monkeypatch.setattr(render, "pdf", watched)
    answers = await asyncio.gather(*[report(client, world.clinician, world.patient.id) for _ in range(5)])
    assert [answer.status_code for answer in answers] == [200] * 5
    assert most == service.CONCURRENT_RENDERS


# --- headers ----------------------------------------------------------------------------------------------------


async def test_inline_with_a_dated_filename_without_the_patients_name_and_never_cached(client, app, world):
    response = await report(client, world.clinician, world.patient.id)
    assert response.status_code == 200
    today = dt.datetime.now(NEW_YORK).date()
    assert response.headers["content-disposition"] == f'inline; filename="progress-report-{today}.pdf"'
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


# --- who may read it ------------------------------------------------------------------------------------------


ROUTES = [Route("patient_report", "GET", lambda w: f"/v1/patients/{w.patient.id}/report", on_patient(200))]


@pytest.mark.parametrize(("route", "caller"), cells(ROUTES), ids=cell_id)
async def test_access(client, world, route, caller):
    response = await check_route(client, world, route, caller)
    if response.status_code == 200:
        assert response.headers["content-type"] == "application/pdf"


async def test_hidden_and_missing_patients_get_the_same_404(client, world):
    hidden = await report(client, world.clinician_b, world.patient.id)
    missing = await report(client, world.clinician_b, uuid.uuid4())
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]


async def test_reads_and_denials_are_audited(client, world, app):
    assert (await report(client, world.clinician, world.patient.id)).status_code == 200
    assert (await report(client, world.patient_user, world.patient.id)).status_code == 200
    assert (await report(client, world.other_clinician, world.patient.id)).status_code == 404
    events = await rows(app, AuditEvent, AuditEvent.action == "report.read", order_by=AuditEvent.at)
    assert [(e.actor_id, e.outcome, e.patient_id, e.resource_type) for e in events] == [
        (world.clinician.id, "success", world.patient.id, "patient"),
        (world.patient_user.id, "success", world.patient.id, "patient"),
        (world.other_clinician.id, "denied", world.patient.id, "patient")]


# --- validation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "loc"), [
    ({"from": "2026-11-02", "to": "2026-11-01"}, ["query", "to"]),
    ({"from": "2026-13-01"}, ["query", "from"]),
    ({"from": "2026-11-01T00:00:00Z"}, ["query", "from"]),
    ({"to": "yesterday"}, ["query", "to"]),
    ({"from": "0001-01-01"}, ["query", "from"]),
    ({"to": "9999-12-31"}, ["query", "to"]),
    ({"from": "1999-12-31", "to": "2000-01-31"}, ["query", "from"]),
    ({"from": "2100-12-01", "to": "2101-01-01"}, ["query", "to"]),
    ({"from": "2020-01-01", "to": "2025-01-05"}, ["query", "from"]),  # over five years
])
async def test_invalid_periods_are_422_naming_the_parameter(client, world, app, params, loc):
    response = await report(client, world.clinician, world.patient.id, **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert loc in [error["loc"] for error in response.json()["errors"]]
    assert await rows(app, AuditEvent, AuditEvent.action == "report.read") == []


async def test_a_pdf_answer_conforms_to_the_openapi_document(client, app, world):
    """The fuzz test reaches this operation with ids of no patient; here a real report is checked against the
    document the same way (status code, content type, schema)."""
    from tests.test_fuzz import CHECKS, SCHEMA

    await add_scores(app, world, [(ago(3), 12)])
    case = SCHEMA["/v1/patients/{patient_id}/report"]["GET"].Case(path_parameters={"patient_id": str(world.patient.id)})
    kwargs = case.as_transport_kwargs(base_url="http://calmtrack.test", headers=world.clinician.headers)
    response = await client.request(kwargs["method"], kwargs["url"], headers=kwargs["headers"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    case.validate_response(response, checks=CHECKS)
