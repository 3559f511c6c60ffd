"""Exports (the contract's "Integrations"): a patient's record as a FHIR R4 Bundle or CSV, and the organization's
scores in bulk as CSV or NDJSON with a sync watermark."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import update

from api.security.scopes import Scope
from models import AuditEvent, Score
from tests.conftest import new_id
from tests.factories import ClientActor, add_client, client_token
from tests.matrix import Route, by_role, cell_id, cells, check_route, on_patient
from tests.plan_helpers import rows
from tests.session_helpers import active_plan, new_session, sign

EVERY_INSTRUMENT = {"gad7": [2, 1, 2, 3, 1, 0, 2], "phq9": [1, 1, 2, 1, 0, 1, 2, 0, 1], "gad2": [2, 1],
                    "suds": [65]}
FHIR_SCOPES = [Scope.patients_read, Scope.plans_read, Scope.sessions_read, Scope.scores_read]


async def score(client, actor, patient_id, instrument, items, *, recorded_at="2026-11-20T08:30:00+01:00", **extra):
    body = {"id": new_id(), "instrument": instrument, "items": items, "recorded_at": recorded_at, **extra}
    answer = await client.post(f"/v1/patients/{patient_id}/scores", json=body, headers=actor.headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def full_record(client, world) -> dict:
    """world.patient with an active plan, two signed sessions (one more draft) and a score of every instrument."""
    plan = await active_plan(client, world)
    signed = []
    today = dt.date.today()
    for day in ((today - dt.timedelta(days=10)).isoformat(), (today - dt.timedelta(days=7)).isoformat()):
        draft = await new_session(client, world, plan, started_at=f"{day}T09:00:00-05:00",
                                  ended_at=f"{day}T11:10:00-05:00", notes="secret clinician note",
                                  vitals=[{"at": f"{day}T08:55:00-05:00", "phase": "pre", "systolic": 128,
                                           "diastolic": 82, "heart_rate": 74, "spo2": 98}],
                                  discharge={"at": f"{day}T11:10:00-05:00", "criteria_met": True})
        answer = await sign(client, world.clinician, draft["id"], draft["etag"])
        assert answer.status_code == 200, answer.text
        signed.append(answer.json())
    await new_session(client, world, plan, notes="draft only")
    scores = [await score(client, world.patient_user, world.patient.id, code, items)
              for code, items in EVERY_INSTRUMENT.items()]
    retracted = await score(client, world.patient_user, world.patient.id, "gad7", [0] * 7)
    retract = await client.delete(f"/v1/me/scores/{retracted['id']}", headers=world.patient_user.headers)
    assert retract.status_code == 204
    return {"plan": plan, "sessions": signed, "scores": scores, "retracted": retracted}


async def fhir_export(client, actor, patient_id):
    return await client.get(f"/v1/patients/{patient_id}/export", params={"format": "fhir"}, headers=actor.headers)


def by_type(bundle: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for entry in bundle["entry"]:
        found.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return found


# --- FHIR ---------------------------------------------------------------------------------------------------------


async def test_the_fhir_bundle_of_a_full_record_validates(client, world, app):
    record = await full_record(client, world)
    answer = await fhir_export(client, world.clinician, world.patient.id)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/fhir+json"
    parsed = Bundle.model_validate_json(answer.text)  # validates every resource of the R4B bundle again
    assert parsed.type == "collection"

    bundle = answer.json()
    resources = by_type(bundle)
    assert [p["id"] for p in resources["Patient"]] == [str(world.patient.id)]
    assert [(c["id"], c["status"], c["intent"]) for c in resources["CarePlan"]] == [
        (record["plan"]["id"], "active", "plan")]
    assert sorted(p["id"] for p in resources["Procedure"]) == sorted(s["id"] for s in record["sessions"])
    assert all(p["status"] == "completed" and p["basedOn"] == [{"reference": f"urn:uuid:{record['plan']['id']}"}]
               for p in resources["Procedure"])
    live = {s["id"] for s in record["scores"]}
    assert {q["id"] for q in resources["QuestionnaireResponse"]} == live  # the retracted one is not there
    assert len(resources["Observation"]) == len(live)
    assert len({e["fullUrl"] for e in bundle["entry"]}) == len(bundle["entry"])
    patient_ref = {"reference": f"urn:uuid:{world.patient.id}"}
    assert all(r["subject"] == patient_ref for kind in ("CarePlan", "Procedure", "QuestionnaireResponse",
                                                        "Observation") for r in resources[kind])

    codes = {o["code"]["coding"][0]["code"]: o for o in resources["Observation"]}
    assert codes["70274-6"]["valueQuantity"]["value"] == sum(EVERY_INSTRUMENT["gad7"])
    assert codes["70274-6"]["code"]["coding"][0]["system"] == "http://loinc.org"
    assert codes["44261-6"]["valueQuantity"]["value"] == sum(EVERY_INSTRUMENT["phq9"])
    assert codes["44261-6"]["component"] == [{"code": {"coding": [{
        "system": "http://loinc.org", "code": "44260-8",
        "display": "Thoughts that you would be better off dead, or of hurting yourself in some way"}]},
        "valueInteger": 1}]
    for local in ("gad2", "suds"):  # no LOINC code in domain.md: Calmtrack's own code system
        assert codes[local]["code"]["coding"][0]["system"] == "urn:calmtrack:instrument"
    questionnaires = {q["questionnaire"]: q for q in resources["QuestionnaireResponse"]}
    assert [i["answer"][0]["valueInteger"] for i in questionnaires["http://loinc.org/q/69737-5"]["item"]] == \
        EVERY_INSTRUMENT["gad7"]
    assert "secret clinician note" in answer.text and "draft only" not in answer.text

    [event] = await rows(app, AuditEvent, AuditEvent.action == "export.read")
    assert (event.actor_id, event.patient_id, event.outcome) == (world.clinician.id, world.patient.id, "success")


async def test_a_patient_exports_their_own_record_without_clinician_notes(client, world):
    await full_record(client, world)
    answer = await fhir_export(client, world.patient_user, world.patient.id)
    assert answer.status_code == 200
    Bundle.model_validate_json(answer.text)
    assert "secret clinician note" not in answer.text
    assert (await fhir_export(client, world.other_patient_user, world.patient.id)).status_code == 404


async def test_a_client_needs_every_read_scope_for_fhir(client, world, app):
    await full_record(client, world)
    async with app.state.sessions() as session:
        all_four = await add_client(session, world.org_a, world.admin.user, FHIR_SCOPES)
        three = await add_client(session, world.org_a, world.admin.user, FHIR_SCOPES[:3])
        await session.commit()
    ok = await fhir_export(client, ClientActor(all_four, client_token(app, all_four)), world.patient.id)
    assert ok.status_code == 200
    Bundle.model_validate_json(ok.text)
    assert "secret clinician note" in ok.text  # an integration of the clinic sees what its admins see
    short = await fhir_export(client, ClientActor(three, client_token(app, three)), world.patient.id)
    assert short.status_code == 403
    assert short.headers["www-authenticate"].endswith('scope="scores:read"')


async def test_an_empty_record_is_a_valid_bundle(client, world):
    answer = await fhir_export(client, world.admin, world.fresh_patient.id)
    assert answer.status_code == 200
    assert [e["resource"]["resourceType"] for e in Bundle.model_validate_json(answer.text).model_dump()["entry"]] \
        == ["Patient"]


# --- the patient's CSV --------------------------------------------------------------------------------------------


async def test_the_patients_scores_as_csv_round_trip(client, world):
    made = [await score(client, world.clinician, world.patient.id, code, items, note="clinic note")
            for code, items in EVERY_INSTRUMENT.items()]
    answer = await client.get(f"/v1/patients/{world.patient.id}/export", params={"format": "csv"},
                              headers=world.clinician.headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith('attachment; filename="calmtrack-scores-')
    parsed = list(csv.DictReader(io.StringIO(answer.text, newline="")))
    assert {row["id"] for row in parsed} == {s["id"] for s in made}
    for row in parsed:
        items = EVERY_INSTRUMENT[row["instrument"]]
        assert [int(row[f"item_{n + 1}"]) for n in range(len(items))] == items
        assert all(row[f"item_{n}"] == "" for n in range(len(items) + 1, 10))
        assert int(row["total"]) == sum(items) and row["source"] == "clinician" and row["deleted_at"] == ""
    assert "clinic note" not in answer.text


@pytest.mark.parametrize("params", [{}, {"format": "pdf"}, {"format": "fhir", "extra": "1"}])
async def test_bad_export_parameters_are_422(client, world, params):
    answer = await client.get(f"/v1/patients/{world.patient.id}/export", params=params, headers=world.admin.headers)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"


EXPORT_ROUTES = [
    Route("export_fhir", "GET", lambda w: f"/v1/patients/{w.patient.id}/export?format=fhir",
          on_patient(200, scope=None)),
    Route("export_csv", "GET", lambda w: f"/v1/patients/{w.patient.id}/export?format=csv",
          on_patient(200, scope=Scope.scores_read)),
    Route("bulk_csv", "GET", lambda w: "/v1/exports/scores?format=csv",
          by_role(admin=200, clinician=403, patient=403, scope=Scope.scores_read)),
    Route("bulk_ndjson", "GET", lambda w: "/v1/exports/scores?format=ndjson",
          by_role(admin=200, clinician=403, patient=403, scope=Scope.scores_read)),
]


@pytest.mark.parametrize(("route", "caller"), cells(EXPORT_ROUTES), ids=cell_id)
async def test_access(client, world, app, route, caller):
    made = await score(client, world.patient_user, world.patient.id, "gad7", EVERY_INSTRUMENT["gad7"])
    await stamp(app, [made["id"]], dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))  # settled: in the bulk export
    response = await check_route(client, world, route, caller)
    if route.name.startswith("bulk") and response.status_code == 200:
        mine = caller not in ("admin_b", "client_b")
        assert (str(world.patient.id) in response.text) == mine  # nothing crosses organizations


# --- bulk export --------------------------------------------------------------------------------------------------


async def bulk(client, actor, format: str, updated_since: str | None = None):
    params = {"format": format, **({"updated_since": updated_since} if updated_since else {})}
    answer = await client.get("/v1/exports/scores", params=params, headers=actor.headers)
    assert answer.status_code == 200, answer.text
    return answer


def ndjson(answer) -> list[dict]:
    assert answer.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in answer.text.splitlines()]


def csv_rows(answer) -> list[dict]:
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(answer.text, newline="")))


async def stamp(app, score_ids, when: dt.datetime) -> None:
    """Backdates scores' change time: the export leaves changes of the last SYNC_MARGIN to the next pull."""
    async with app.state.sessions() as session:
        await session.exec(update(Score).where(Score.id.in_([uuid.UUID(i) for i in score_ids])).values(updated_at=when))
        await session.commit()


async def test_bulk_exports_round_trip_and_the_watermark_picks_up_only_later_changes(client, world, app,
                                                                                   monkeypatch):
    from api.exports import service

    now = dt.datetime.now(dt.UTC)
    clock = {"now": now}
    monkeypatch.setattr(service, "utcnow", lambda: clock["now"])  # the export's clock: each pull an hour later
    first = [await score(client, world.patient_user, world.patient.id, code, items)
             for code, items in EVERY_INSTRUMENT.items()]
    first.append(await score(client, world.clinician_b, world.patient_b.id, "gad7", [0] * 7))  # other organization
    await stamp(app, [s["id"] for s in first], now - dt.timedelta(hours=2))

    pulled = await bulk(client, world.admin, "ndjson")
    records = ndjson(pulled)
    assert {r["id"] for r in records} == {s["id"] for s in first[:-1]}
    assert all(r["deleted_at"] is None and r["patient_id"] == str(world.patient.id) for r in records)
    gad7 = next(r for r in records if r["instrument"] == "gad7")
    assert gad7["items"] == EVERY_INSTRUMENT["gad7"] and gad7["total"] == sum(EVERY_INSTRUMENT["gad7"])
    watermark = pulled.headers["x-sync-watermark"]
    assert dt.datetime.fromisoformat(watermark) < now  # trails the clock by the sync margin
    as_csv = csv_rows(await bulk(client, world.admin, "csv"))
    assert [(r["id"], int(r["total"])) for r in as_csv] == [(r["id"], r["total"]) for r in records]

    # An hour later: one score retracted, one new, both changed after the first pull's watermark.
    clock["now"] = now + dt.timedelta(hours=1)
    retracted = first[0]["id"]
    assert (await client.delete(f"/v1/me/scores/{retracted}", headers=world.patient_user.headers)).status_code == 204
    added = await score(client, world.patient_user, world.patient.id, "phq9", EVERY_INSTRUMENT["phq9"])
    await stamp(app, [retracted, added["id"]], now + dt.timedelta(minutes=10))

    second = await bulk(client, world.admin, "csv", watermark)
    changed = csv_rows(second)
    assert {r["id"] for r in changed} == {retracted, added["id"]}
    tombstone = next(r for r in changed if r["id"] == retracted)
    assert tombstone["deleted_at"] != "" and dt.datetime.fromisoformat(tombstone["deleted_at"])
    assert ndjson(await bulk(client, world.admin, "ndjson", second.headers["x-sync-watermark"])) == []

    exports = await rows(app, AuditEvent, AuditEvent.action == "score.export")
    assert len(exports) == 4 and all(e.patient_id is None for e in exports)  # once per pull, not per row


async def test_a_change_committed_during_a_pull_is_in_the_next_one(client, world, app):
    """The watermark is fixed before the first row: a change stamped after it (even one that commits while the
    pull streams) is not in this pull, and the next pull from the watermark has it."""
    pulled = await bulk(client, world.admin, "ndjson")
    watermark = dt.datetime.fromisoformat(pulled.headers["x-sync-watermark"])
    late = await score(client, world.patient_user, world.patient.id, "gad2", [1, 1])
    await stamp(app, [late["id"]], watermark)  # exactly at the watermark: this pull excluded it, the next includes
    assert [r["id"] for r in ndjson(await bulk(client, world.admin, "ndjson", pulled.headers["x-sync-watermark"]))] \
        == [late["id"]]


async def test_bulk_export_pages_through_many_rows(client, world, app, monkeypatch):
    from api.exports import queries

    monkeypatch.setattr(queries, "EXPORT_BATCH", 3)
    made = [await score(client, world.patient_user, world.patient.id, "suds", [n]) for n in range(8)]
    when = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    await stamp(app, [s["id"] for s in made[:4]], when)  # equal change times: the id breaks the tie
    await stamp(app, [s["id"] for s in made[4:]], when + dt.timedelta(seconds=1))
    records = ndjson(await bulk(client, world.admin, "ndjson"))
    assert sorted(r["id"] for r in records) == sorted(s["id"] for s in made) and len(records) == 8


@pytest.mark.parametrize("params", [
    {"format": "xml"}, {}, {"format": "csv", "updated_since": "yesterday"},
    {"format": "csv", "updated_since": "2026-11-01T00:00:00"},  # no offset
    {"format": "csv", "updated_since": "0001-01-01T00:00:00Z"}, {"format": "csv", "since": "2026-11-01T00:00:00Z"},
])
async def test_bad_bulk_parameters_are_422(client, world, params):
    answer = await client.get("/v1/exports/scores", params=params, headers=world.admin.headers)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"


async def test_a_watermark_from_the_future_answers_nothing_and_keeps_it(client, world):
    await score(client, world.patient_user, world.patient.id, "gad7", EVERY_INSTRUMENT["gad7"])
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    answer = await bulk(client, world.admin, "ndjson", future)
    assert ndjson(answer) == []
    assert dt.datetime.fromisoformat(answer.headers["x-sync-watermark"]) == dt.datetime.fromisoformat(future)
