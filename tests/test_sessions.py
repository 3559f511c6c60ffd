"""Supervised dosing sessions: the record from draft to signed to addendum, immutability after signing, If-Match on
drafts, lists, the patient's view, access, idempotency, outbox and audit. Field validation is in
test_sessions_validation.py, the warning rules in test_sessions_warnings.py."""

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from models import DosingSession, OutboxEvent, SessionAddendum
from api.security.scopes import Scope
from tests.matrix import Route, cell_id, cells, check_route, on_patient
from tests.plan_helpers import count, rows
from tests.session_helpers import (
    active_plan,
    add_addendum,
    at,
    create_session,
    example_session,
    new_session,
    patch_session,
    read,
    session_body,
    sign,
    utc,
)

SERVER_FIELDS = {"id", "patient_id", "status", "revision", "warnings", "addenda", "created_by", "created_at",
                 "updated_by", "updated_at", "signed_by", "signed_at", "unplanned_reason"}

# --- the record from draft to signed to addendum -----------------------------------------------------------------


async def test_create_with_the_contract_example(client, world):
    plan = await active_plan(client, world)
    body = example_session(world, plan["id"])
    response = await create_session(client, world.clinician, world.patient.id, body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "draft" and created["revision"] == 1
    assert response.headers["etag"] == f'"{created["id"]}-1"'
    assert response.headers["location"] == f"/v1/sessions/{created['id']}"
    assert created["patient_id"] == str(world.patient.id) and created["plan_id"] == plan["id"]
    # Instants are answered in UTC; nested ones too, with the optional fields filled in.
    assert created["started_at"] == utc("09:00") and created["ended_at"] == utc("11:10")
    assert created["vitals"] == [{**body["vitals"][0], "at": utc("08:55"), "respiratory_rate": None}]
    assert created["adverse_events"] == [{**body["adverse_events"][0], "description": None, "at": None}]
    assert created["discharge"] == {"at": utc("11:10"), "criteria_met": True, "accompanied_by": None}
    for field in ("supervising_clinician_id", "medication", "route", "dose_mg", "weight_kg", "dissociation_cadss",
                  "sedation_moaas", "pre_suds", "post_suds", "notes"):
        assert created[field] == body[field], field
    # 35 mg is exactly 0.5 mg/kg × 70 kg, 128/82 is below 160/100: no warnings.
    assert created["warnings"] == [] and created["addenda"] == []
    assert created["signed_by"] is None and created["signed_at"] is None
    assert created["created_by"] == created["updated_by"] == str(world.clinician.id)
    assert set(created) == set(body) | SERVER_FIELDS


async def test_draft_to_signed_to_addendum(client, world, app):
    draft = await new_session(client, world, ended_at=None, discharge=None)
    # Documented while the patient is observed: the end and discharge come later.
    early = await sign(client, world.clinician, draft["id"])
    assert early.status_code == 409 and "ended_at and discharge" in early.json()["detail"]

    finish = {"ended_at": session_body(world, None)["ended_at"], "discharge": session_body(world, None)["discharge"],
              "post_suds": 25}
    edited = await patch_session(client, world.clinician, draft["id"], finish, draft["etag"])
    assert edited.status_code == 200, edited.text
    assert edited.json()["revision"] == 2 and edited.json()["post_suds"] == 25
    assert edited.headers["etag"] == f'"{draft["id"]}-2"'

    signed = await sign(client, world.clinician, draft["id"], edited.headers["etag"])
    assert signed.status_code == 200, signed.text
    record = signed.json()
    assert record["status"] == "signed" and record["revision"] == 3
    assert record["signed_by"] == str(world.clinician.id) and record["signed_at"].endswith("Z")
    assert record["signed_at"] == record["updated_at"]
    assert signed.headers["etag"] == f'"{draft["id"]}-3"'

    first = await add_addendum(client, world.clinician, draft["id"], "  Ondansetron was 8 mg, not 4 mg.  ")
    assert first.status_code == 201, first.text
    addendum = first.json()
    assert addendum["text"] == "Ondansetron was 8 mg, not 4 mg." and addendum["session_id"] == draft["id"]
    assert addendum["author_id"] == str(world.clinician.id) and addendum["created_at"].endswith("Z")
    second = await add_addendum(client, world.clinician, draft["id"], "Called the next day: feeling well.")
    assert second.status_code == 201

    current = await read(client, world.clinician, draft["id"])
    assert [a["id"] for a in current.json()["addenda"]] == [addendum["id"], second.json()["id"]]
    # The record itself is as signed: addenda do not change it or its ETag, only its change time for delta sync
    # (updated_at: the latest addendum's).
    assert {k: v for k, v in current.json().items() if k not in ("addenda", "updated_at")} == {
        k: v for k, v in record.items() if k not in ("addenda", "updated_at")}
    assert current.json()["updated_at"] == second.json()["created_at"] > record["updated_at"]
    assert current.headers["etag"] == signed.headers["etag"]
    assert await count(app, SessionAddendum) == 2


async def signed_session(client, world):
    draft = await new_session(client, world)
    response = await sign(client, world.clinician, draft["id"])
    assert response.status_code == 200, response.text
    return {**response.json(), "etag": response.headers["etag"]}


@pytest.mark.parametrize("use_current_etag", [True, False])
@pytest.mark.parametrize("patch", [{"notes": "changed"}, {"dose_mg": 40.0}, {"vitals": []}, {"discharge": None},
                                   {"plan_id": None, "unplanned_reason": "rescue"}])
async def test_a_signed_session_cannot_be_edited(client, world, patch, use_current_etag):
    record = await signed_session(client, world)
    etag = record["etag"] if use_current_etag else f'"{record["id"]}-1"'
    response = await patch_session(client, world.clinician, record["id"], patch, etag)
    assert response.status_code == 409, response.text
    assert "addend" in response.json()["detail"]
    unchanged = await read(client, world.clinician, record["id"])
    assert {k: v for k, v in unchanged.json().items()} == {k: v for k, v in record.items() if k != "etag"}


async def test_a_signed_session_cannot_be_signed_again(client, world, app):
    record = await signed_session(client, world)
    for etag in (None, record["etag"]):
        again = await sign(client, world.clinician, record["id"], etag)
        assert again.status_code == 409, again.text
    unchanged = (await read(client, world.clinician, record["id"])).json()
    assert unchanged["signed_at"] == record["signed_at"] and unchanged["revision"] == record["revision"]
    assert await count(app, OutboxEvent, OutboxEvent.type == "session.signed") == 1


async def test_without_if_match_a_patch_on_a_signed_session_is_still_409(client, world):
    record = await signed_session(client, world)
    response = await patch_session(client, world.clinician, record["id"], {"notes": "changed"}, None)
    assert response.status_code == 409


async def test_the_database_refuses_to_change_a_signed_session_or_an_addendum(client, world, app):
    record = await signed_session(client, world)
    await add_addendum(client, world.clinician, record["id"], "note")
    statements = [
        ("UPDATE dosing_session SET notes = 'tampered' WHERE id = :id", record["id"]),
        ("DELETE FROM dosing_session WHERE id = :id", record["id"]),
        ("UPDATE session_addendum SET text = 'tampered' WHERE session_id = :id", record["id"]),
        ("DELETE FROM session_addendum WHERE session_id = :id", record["id"]),
    ]
    for statement, session_id in statements:
        async with app.state.sessions() as session:
            with pytest.raises(DBAPIError):
                # SQLite stores UUIDs as 32 hex characters, PostgreSQL as uuid.
                value = uuid.UUID(session_id) if session.bind.dialect.name == "postgresql" else uuid.UUID(
                    session_id).hex
                await session.exec(text(statement), params={"id": value})
    assert (await read(client, world.clinician, record["id"])).json()["notes"] == "clinician-only"


async def test_a_draft_stored_under_rules_since_tightened_must_be_corrected_before_signing(client, world, app):
    draft = await new_session(client, world)
    async with app.state.sessions() as session:
        row = await session.get(DosingSession, uuid.UUID(draft["id"]))
        row.dose_mg = 900.0  # above today's 500 mg bound
        session.add(row)
        await session.commit()
    response = await sign(client, world.clinician, draft["id"])
    assert response.status_code == 409 and "PATCH" in response.json()["detail"]
    assert (await read(client, world.clinician, draft["id"])).json()["status"] == "draft"


async def test_addenda_are_only_for_signed_sessions(client, world, app):
    draft = await new_session(client, world)
    response = await add_addendum(client, world.clinician, draft["id"], "too early")
    assert response.status_code == 409 and "PATCH" in response.json()["detail"]
    assert await count(app, SessionAddendum) == 0


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "   "}, {"text": "x" * 10_001}, {},
                                  {"text": "ok", "author_id": str(uuid.uuid4())}])
async def test_invalid_addenda_are_422(client, world, body):
    record = await signed_session(client, world)
    response = await client.post(f"/v1/sessions/{record['id']}/addenda", json=body, headers=world.clinician.headers)
    assert response.status_code == 422


async def test_only_the_supervising_clinician_signs_and_is_recorded_as_signer(client, world):
    # The world's monitor supervises; the prescriber, though allowed to edit the draft, may not sign it.
    draft = await new_session(client, world, supervising_clinician_id=str(world.monitor.id))
    refused = await sign(client, world.clinician, draft["id"])
    assert refused.status_code == 403
    assert refused.json()["detail"] == "A session is signed by its supervising clinician"
    response = await sign(client, world.monitor, draft["id"])
    assert response.status_code == 200
    assert response.json()["signed_by"] == str(world.monitor.id)
    assert response.json()["supervising_clinician_id"] == str(world.monitor.id)


async def test_a_therapist_cannot_supervise_a_session(client, world):
    response = await create_session(client, world.clinician, world.patient.id,
                                    session_body(world, None, supervising_clinician_id=str(world.therapist.id),
                                                 unplanned_reason="Rescue session"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "supervising_clinician_id"]


async def test_a_supervisor_moved_to_therapist_can_no_longer_sign(client, world):
    draft = await new_session(client, world, supervising_clinician_id=str(world.monitor.id))
    await client.put(f"/v1/patients/{world.patient.id}/care-team/{world.monitor.id}", json={"role": "therapist"},
                     headers=world.admin.headers)
    assert (await sign(client, world.monitor, draft["id"])).status_code == 403


# --- drafts under If-Match ---------------------------------------------------------------------------------------


async def test_patch_without_if_match_is_428(client, world):
    draft = await new_session(client, world)
    for etag in (None, "*"):
        response = await patch_session(client, world.clinician, draft["id"], {"notes": "x"}, etag)
        assert response.status_code == 428
    assert (await read(client, world.clinician, draft["id"])).json()["revision"] == 1


async def test_two_clinicians_editing_one_revision_one_wins(client, world):
    await client.put(f"/v1/patients/{world.patient.id}/care-team/{world.other_clinician.id}",
                     json={"role": "monitor"}, headers=world.admin.headers)
    draft = await new_session(client, world)
    answers = await asyncio.gather(
        patch_session(client, world.clinician, draft["id"], {"notes": "Cleo's"}, draft["etag"]),
        patch_session(client, world.other_clinician, draft["id"], {"notes": "Otto's"}, draft["etag"]),
    )
    assert sorted(a.status_code for a in answers) == [200, 412]
    winner = next(a for a in answers if a.status_code == 200).json()
    stored = (await read(client, world.clinician, draft["id"])).json()
    assert stored["notes"] == winner["notes"] and stored["revision"] == 2


async def test_signing_with_a_stale_etag_is_412_and_signs_nothing(client, world):
    draft = await new_session(client, world)
    edited = await patch_session(client, world.clinician, draft["id"], {"notes": "more"}, draft["etag"])
    response = await sign(client, world.clinician, draft["id"], draft["etag"])
    assert response.status_code == 412
    assert (await read(client, world.clinician, draft["id"])).json() == {**edited.json()}


async def test_patch_is_a_merge_patch_and_a_no_op_keeps_the_revision(client, world):
    draft = await new_session(client, world)
    vitals = [*draft["vitals"], {"at": utc("09:40"), "phase": "during", "systolic": 142, "diastolic": 88,
                                 "heart_rate": 90, "spo2": 97, "respiratory_rate": 14}]
    response = await patch_session(client, world.clinician, draft["id"],
                                   {"vitals": vitals, "notes": None, "weight_kg": None}, draft["etag"])
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["vitals"] == vitals and updated["notes"] is None and updated["weight_kg"] is None
    assert updated["dose_mg"] == draft["dose_mg"] and updated["updated_at"] != draft["updated_at"]
    same = await patch_session(client, world.clinician, draft["id"], {"vitals": list(reversed(vitals))},
                               response.headers["etag"])
    assert same.status_code == 200 and same.json()["revision"] == updated["revision"]  # vitals are kept in time order


@pytest.mark.parametrize(("patch", "loc"), [
    ({"started_at": None}, ["started_at"]),
    ({"dose_mg": None}, ["dose_mg"]),
    ({"vitals": None}, ["vitals"]),
    ({"status": "signed"}, ["status"]),
    ({"warnings": []}, ["warnings"]),
    ({"signed_by": str(uuid.uuid4())}, ["signed_by"]),
    ({"sedation_moaas": 6}, ["sedation_moaas"]),
    # Valid alone, but the merged session would end before it started.
    ({"started_at": "2000-01-01T12:00:00Z"}, ["ended_at"]),
    ({"plan_id": None}, ["unplanned_reason"]),
])
async def test_invalid_patch_is_422_and_changes_nothing(client, world, patch, loc):
    draft = await new_session(client, world)
    response = await patch_session(client, world.clinician, draft["id"], patch, draft["etag"])
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]][:1] == [["body", *loc]]
    assert (await read(client, world.clinician, draft["id"])).json()["revision"] == 1


# --- lists -------------------------------------------------------------------------------------------------------


async def test_list_is_newest_started_first_paginated_and_filters_by_status(client, world):
    plan = await active_plan(client, world)
    starts = ["07:00", "09:00", "08:00"]
    made = [await new_session(client, world, plan, started_at=at(clock), vitals=[]) for clock in starts]
    await sign(client, world.clinician, made[0]["id"])
    url = f"/v1/patients/{world.patient.id}/sessions"
    first = (await client.get(url, params={"limit": 2}, headers=world.clinician.headers)).json()
    second = (await client.get(url, params={"limit": 2, "cursor": first["next_cursor"]},
                               headers=world.clinician.headers)).json()
    newest_first = [made[1]["id"], made[2]["id"], made[0]["id"]]
    assert [s["id"] for s in first["items"] + second["items"]] == newest_first
    assert second["next_cursor"] is None
    drafts = (await client.get(url, params={"status": "draft"}, headers=world.clinician.headers)).json()
    assert [s["id"] for s in drafts["items"]] == newest_first[:2]
    bad = await client.get(url, params={"status": "void"}, headers=world.clinician.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "status"]
    tampered = await client.get(url, params={"cursor": "bm9wZQ"}, headers=world.clinician.headers)
    assert tampered.status_code == 422 and tampered.json()["errors"][0]["loc"] == ["query", "cursor"]


# --- the patient's view ------------------------------------------------------------------------------------------

PATIENT_HIDDEN = {"notes", "unplanned_reason", "warnings", "addenda"}


async def test_patient_sees_own_signed_sessions_without_notes_addenda_or_warnings(client, world):
    record = await signed_session(client, world)
    await add_addendum(client, world.clinician, record["id"], "Addendum for the team")
    draft = await new_session(client, world, notes="draft notes")
    staff_view = (await read(client, world.clinician, record["id"])).json()

    response = await read(client, world.patient_user, record["id"])
    assert response.status_code == 200
    mine = response.json()
    assert set(mine) == set(staff_view) - PATIENT_HIDDEN
    assert mine == {k: v for k, v in staff_view.items() if k not in PATIENT_HIDDEN}
    assert "clinician-only" not in response.text and "Addendum for the team" not in response.text

    listed = await client.get(f"/v1/patients/{world.patient.id}/sessions", headers=world.patient_user.headers)
    assert [s["id"] for s in listed.json()["items"]] == [record["id"]]  # the draft is not listed
    assert "clinician-only" not in listed.text and "Addendum for the team" not in listed.text
    assert all(not PATIENT_HIDDEN & set(item) for item in listed.json()["items"])
    asked = await client.get(f"/v1/patients/{world.patient.id}/sessions", params={"status": "draft"},
                             headers=world.patient_user.headers)
    assert asked.json()["items"] == []
    # An unsigned draft does not exist for the patient yet.
    hidden = await read(client, world.patient_user, draft["id"])
    assert hidden.status_code == 404 and "draft notes" not in hidden.text


# --- who may do what ---------------------------------------------------------------------------------------------

# Target: world.patient. Admins read but do not write sessions; on the care team the prescriber and the monitor
# write them, the therapist only reads.
READ = on_patient(200, scope=Scope.sessions_read)
WRITE = on_patient(200, admin=403, therapist=403, patient=403)


def session_path(which, suffix=""):
    return lambda w: f"/v1/sessions/{w.extra[which]['id']}{suffix}"


SESSION_ROUTES = [
    Route("create_session", "POST", lambda w: f"/v1/patients/{w.patient.id}/sessions",
          on_patient(201, admin=403, therapist=403, patient=403),
          json=lambda w: session_body(w, w.extra["plan"]["id"])),
    Route("list_sessions", "GET", lambda w: f"/v1/patients/{w.patient.id}/sessions", READ),
    Route("read_signed_session", "GET", session_path("signed"), READ),
    Route("read_draft_session", "GET", session_path("draft"), {**READ, "patient_user": 404}),
    Route("patch_session", "PATCH", session_path("draft"), WRITE, json=lambda w: {"notes": "changed"},
          headers=lambda w: {"If-Match": w.extra["draft"]["etag"]}),
    # The draft's supervisor is the prescriber: only they sign it.
    Route("sign_session", "POST", session_path("draft", "/sign"), {**WRITE, "monitor": 403}),
    Route("add_addendum", "POST", session_path("signed", "/addenda"),
          on_patient(201, admin=403, therapist=403, patient=403),
          json=lambda w: {"text": "A correction"}),
]


@pytest.mark.parametrize(("route", "caller"), cells(SESSION_ROUTES), ids=cell_id)
async def test_access(client, world, app, route, caller):
    plan = await active_plan(client, world)
    world.extra.update(plan=plan, draft=await new_session(client, world, plan, notes="secret draft note"))
    signed = await new_session(client, world, plan, notes="secret signed note")
    world.extra["signed"] = (await sign(client, world.clinician, signed["id"])).json()
    before = [await count(app, model) for model in (DosingSession, SessionAddendum, OutboxEvent)]
    response = await check_route(client, world, route, caller)
    if response.status_code >= 400:
        assert "secret" not in response.text
        assert [await count(app, model) for model in (DosingSession, SessionAddendum, OutboxEvent)] == before
        draft = (await read(client, world.clinician, world.extra["draft"]["id"])).json()
        assert draft["revision"] == 1 and draft["status"] == "draft"  # no write got through
    if caller in ("patient_user",) and response.status_code == 200:
        assert "secret" not in response.text


@pytest.mark.parametrize("caller", ["other_clinician", "other_patient_user", "admin_b", "clinician_b"])
async def test_an_invisible_session_looks_exactly_like_a_missing_one(client, world, caller):
    record = await signed_session(client, world)
    headers = world.actor(caller).headers
    strip = lambda r: {k: v for k, v in r.json().items() if k not in ("request_id", "instance")}  # noqa: E731
    invisible = await client.get(f"/v1/sessions/{record['id']}", headers=headers)
    missing = await client.get(f"/v1/sessions/{uuid.uuid4()}", headers=headers)
    assert invisible.status_code == missing.status_code == 404
    assert strip(invisible) == strip(missing)


async def test_unknown_patient_or_session_is_404(client, world):
    plan = await active_plan(client, world)
    url = f"/v1/patients/{uuid.uuid4()}/sessions"
    body = session_body(world, plan["id"])
    assert (await client.post(url, json=body, headers=world.clinician.headers)).status_code == 404
    assert (await client.get(url, headers=world.clinician.headers)).status_code == 404
    missing = uuid.uuid4()
    assert (await sign(client, world.clinician, missing)).status_code == 404
    assert (await add_addendum(client, world.clinician, missing, "x")).status_code == 404
    assert (await patch_session(client, world.clinician, missing, {"notes": "x"}, "\"x\"")).status_code == 404


# --- Idempotency-Key ---------------------------------------------------------------------------------------------


async def test_idempotency_key_replays_the_created_session(client, world, app):
    plan = await active_plan(client, world)
    body = session_body(world, plan["id"])
    first = await create_session(client, world.clinician, world.patient.id, body, **{"Idempotency-Key": "s-1"})
    again = await create_session(client, world.clinician, world.patient.id, body, **{"Idempotency-Key": "s-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"] and again.headers["location"] == first.headers["location"]
    assert await count(app, DosingSession) == 1
    other = await create_session(client, world.clinician, world.patient.id, {**body, "dose_mg": 30.0},
                                 **{"Idempotency-Key": "s-1"})
    assert other.status_code == 422 and other.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


async def test_idempotency_key_replays_an_addendum(client, world, app):
    record = await signed_session(client, world)
    first = await add_addendum(client, world.clinician, record["id"], "once", **{"Idempotency-Key": "a-1"})
    again = await add_addendum(client, world.clinician, record["id"], "once", **{"Idempotency-Key": "a-1"})
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert await count(app, SessionAddendum) == 1


# --- outbox and audit --------------------------------------------------------------------------------------------


async def test_signing_writes_one_session_signed_event_with_ids_only(client, world, app):
    draft = await new_session(client, world)
    await patch_session(client, world.clinician, draft["id"], {"notes": "more"}, draft["etag"])
    assert await count(app, OutboxEvent, OutboxEvent.type == "session.signed") == 0
    await sign(client, world.clinician, draft["id"])
    await sign(client, world.clinician, draft["id"])  # 409: no second event
    await add_addendum(client, world.clinician, draft["id"], "later")
    events = await rows(app, OutboxEvent, OutboxEvent.type == "session.signed")
    assert [(e.organization_id, e.data) for e in events] == [
        (world.org_a.id, {"session_id": draft["id"], "patient_id": str(world.patient.id)})]


async def audit_trail(client, world):
    response = await client.get("/v1/audit-events", params={"patient_id": str(world.patient.id), "limit": 200},
                                headers=world.admin.headers)
    return [(e["action"], e["outcome"], e["resource_type"], e["actor_id"]) for e in response.json()["items"]
            if e["action"].startswith("session.")][::-1]


async def test_reads_and_writes_are_audited_including_denied_attempts(client, world):
    draft = await new_session(client, world)
    await client.get(f"/v1/patients/{world.patient.id}/sessions", headers=world.clinician.headers)
    await patch_session(client, world.clinician, draft["id"], {"notes": "more"}, draft["etag"])
    await read(client, world.patient_user, draft["id"])  # a draft: denied
    await sign(client, world.clinician, draft["id"])
    await read(client, world.patient_user, draft["id"])
    await add_addendum(client, world.clinician, draft["id"], "later")
    await read(client, world.other_clinician, draft["id"])
    await add_addendum(client, world.admin, draft["id"], "admin")
    clinician, patient, admin, other = (str(a.id) for a in (world.clinician, world.patient_user, world.admin,
                                                             world.other_clinician))
    assert await audit_trail(client, world) == [
        ("session.create", "success", "session", clinician),
        ("session.list", "success", "session", clinician),
        ("session.update", "success", "session", clinician),
        ("session.read", "denied", "session", patient),
        ("session.sign", "success", "session", clinician),
        ("session.read", "success", "session", patient),
        ("session.addendum", "success", "session", clinician),
        ("session.read", "denied", "session", other),
        ("session.addendum", "denied", "session", admin),
    ]
