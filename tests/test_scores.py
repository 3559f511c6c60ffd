"""Scores: server-side scoring, validation, idempotent creates, batches, retraction, lists, authorisation, audit."""

import asyncio
import datetime as dt
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from api.instruments.registry import INSTRUMENTS
from api.scores.schemas import MAX_BATCH, MAX_BATCH_BODY_BYTES, MAX_NOTE
from models import OutboxEvent, Score
from tests.conftest import new_id
from api.security.scopes import Scope
from tests.matrix import Route, by_role, cell_id, cells, check_route, on_patient

GAD7 = [2, 1, 2, 3, 1, 0, 2]  # total 11, moderate


def body(**overrides):
    values = {"id": new_id(), "instrument": "gad7", "items": GAD7, "recorded_at": "2026-11-20T08:30:00+01:00"}
    values.update(overrides)
    return values


def ago(**delta) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).isoformat()


async def post_mine(client, actor, payload):
    return await client.post("/v1/me/scores", json=payload, headers=actor.headers)


async def post_patient(client, actor, patient_id, payload):
    return await client.post(f"/v1/patients/{patient_id}/scores", json=payload, headers=actor.headers)


async def rows(app, model, *where):
    async with app.state.sessions() as session:
        return (await session.exec(select(model).where(*where))).scalars().all()


async def count(app, model, *where) -> int:
    async with app.state.sessions() as session:
        return (await session.exec(select(func.count()).select_from(model).where(*where))).scalar_one()


# --- creating and scoring ------------------------------------------------------------------------------------


async def test_patient_records_a_score_scored_by_the_server(client, world):
    payload = body(note="after a rough week")
    response = await post_mine(client, world.patient_user, payload)
    assert response.status_code == 201
    score = response.json()
    assert score["id"] == payload["id"]
    assert score["patient_id"] == str(world.patient.id)
    assert (score["instrument"], score["items"], score["total"], score["severity"]) == ("gad7", GAD7, 11, "moderate")
    assert score["source"] == "patient" and score["entered_by"] == str(world.patient_user.id)
    assert score["note"] == "after a rough week"
    assert score["deleted_at"] is None and score["urgent_items"] == []
    assert score["received_at"] == score["updated_at"] and score["received_at"].endswith("Z")


async def test_recorded_at_is_answered_in_utc_and_its_offset_kept(client, world):
    for sent, utc, offset in [("2026-11-20T08:30:00+01:00", "2026-11-20T07:30:00Z", "+01:00"),
                              ("2026-11-20T08:30:00-05:30", "2026-11-20T14:00:00Z", "-05:30"),
                              ("2026-11-20T08:30:00Z", "2026-11-20T08:30:00Z", "+00:00")]:
        score = (await post_mine(client, world.patient_user, body(recorded_at=sent))).json()
        assert (score["recorded_at"], score["recorded_utc_offset"]) == (utc, offset)
        stored = (await client.get(f"/v1/scores/{score['id']}", headers=world.clinician.headers)).json()
        assert (stored["recorded_at"], stored["recorded_utc_offset"]) == (utc, offset)


async def test_phq9_item_9_is_flagged_urgent(client, world):
    score = (await post_mine(client, world.patient_user, body(instrument="phq9", items=[0] * 8 + [1]))).json()
    assert (score["total"], score["severity"], score["urgent_items"]) == (1, "minimal", [8])


@pytest.mark.parametrize(("instrument", "items", "severity"), [
    ("gad7", [0, 1, 1, 1, 1, 0, 0], "minimal"), ("gad7", [1, 1, 1, 1, 1, 0, 0], "mild"),
    ("gad7", [2, 2, 2, 2, 1, 0, 0], "mild"), ("gad7", [2, 2, 2, 2, 2, 0, 0], "moderate"),
    ("gad7", [2, 2, 2, 2, 2, 2, 2], "moderate"), ("gad7", [3, 2, 2, 2, 2, 2, 2], "severe"),
    ("phq9", [2, 2, 2, 2, 2, 2, 2, 1, 0], "moderately_severe"), ("phq9", [3, 3, 3, 3, 2, 2, 2, 2, 0], "severe"),
    ("gad2", [1, 2], "positive_screen"), ("gad2", [1, 1], "negative_screen"), ("suds", [40], None),
])
async def test_cut_offs_through_the_api(client, world, instrument, items, severity):
    score = (await post_mine(client, world.patient_user, body(instrument=instrument, items=items))).json()
    assert (score["total"], score["severity"]) == (sum(items), severity)


@st.composite
def valid_answers(draw):
    instrument = draw(st.sampled_from(list(INSTRUMENTS.values())))
    items = draw(st.lists(st.integers(instrument.item_min, instrument.item_max),
                          min_size=instrument.item_count, max_size=instrument.item_count))
    return instrument, items


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=valid_answers())
async def test_any_valid_vector_through_the_api(client, world, answers):
    instrument, items = answers
    response = await post_mine(client, world.patient_user, body(instrument=instrument.code, items=items))
    assert response.status_code == 201
    score = response.json()
    assert score["total"] == sum(items)
    band = next((b for b in instrument.bands if b.label == score["severity"]), None)
    assert (band is None) == (not instrument.bands) and (band is None or band.min <= score["total"] <= band.max)


# --- validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "loc"), [
    ({"items": [1] * 6}, ["body", "items"]),
    ({"items": [1] * 8}, ["body", "items"]),
    ({"items": []}, ["body", "items"]),
    ({"items": [1, 1, 1, 4, 1, 1, 1]}, ["body", "items"]),
    ({"items": [1, 1, 1, -1, 1, 1, 1]}, ["body", "items"]),
    ({"items": [1, 1, 1, 1.5, 1, 1, 1]}, ["body", "items", 3]),
    ({"items": [1, 1, 1, 1.0, 1, 1, 1]}, ["body", "items", 3]),
    ({"items": [1, 1, 1, True, 1, 1, 1]}, ["body", "items", 3]),
    ({"items": [1, 1, 1, "2", 1, 1, 1]}, ["body", "items", 3]),
    ({"items": [1, 1, 1, None, 1, 1, 1]}, ["body", "items", 3]),
    ({"items": "1111111"}, ["body", "items"]),
    ({"instrument": "bdi2"}, ["body", "instrument"]),
    ({"instrument": "suds", "items": [101]}, ["body", "items"]),
    ({"id": "not-a-uuid"}, ["body", "id"]),
    ({"note": "x" * 2001}, ["body", "note"]),
    ({"recorded_at": "2026-11-20T08:30:00"}, ["body", "recorded_at"]),
    ({"recorded_at": "yesterday"}, ["body", "recorded_at"]),
    ({"recorded_at": "1999-12-31T23:59:59Z"}, ["body", "recorded_at"]),
    ({"total": 0}, ["body", "total"]),
    ({"severity": "minimal"}, ["body", "severity"]),
    ({"source": "clinician"}, ["body", "source"]),
    ({"patient_id": new_id()}, ["body", "patient_id"]),
])
async def test_invalid_scores_are_422_naming_the_field(client, world, app, overrides, loc):
    response = await post_mine(client, world.patient_user, body(**overrides))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert loc in [error["loc"] for error in response.json()["errors"]]
    assert await count(app, Score) == 0


async def test_missing_fields_are_422(client, world):
    response = await post_mine(client, world.patient_user, {"id": new_id(), "instrument": "gad7"})
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["errors"]]
    assert ["body", "items"] in locs and ["body", "recorded_at"] in locs


async def test_the_future_limit_is_five_minutes(client, world):
    just_inside = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4, seconds=50)).isoformat()
    just_past = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5, seconds=10)).isoformat()
    assert (await post_mine(client, world.patient_user, body(recorded_at=just_inside))).status_code == 201
    late = await post_mine(client, world.patient_user, body(recorded_at=just_past))
    assert late.status_code == 422
    assert late.json()["errors"][0]["loc"] == ["body", "recorded_at"]
    # The offset does not change which instant is meant: 5 min 10 s ahead is still too far written as UTC+09:00.
    tokyo = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5, seconds=10)).astimezone(
        dt.timezone(dt.timedelta(hours=9))).isoformat()
    assert (await post_mine(client, world.patient_user, body(recorded_at=tokyo))).status_code == 422


def move_server_clock(monkeypatch, seconds):
    """The validation's clock `seconds` ahead: as if the phone retried that much later."""
    from api.scores import schemas

    real = schemas.utcnow
    monkeypatch.setattr(schemas, "utcnow", lambda: real() + dt.timedelta(seconds=seconds))


async def test_a_score_from_a_clock_ahead_is_retryable_then_accepted(client, world, monkeypatch):
    ahead = body(recorded_at=ago(minutes=-15))
    early = await post_mine(client, world.patient_user, ahead)
    assert early.status_code == 422
    problem = early.json()
    assert problem["code"] == "recorded_in_future"
    assert problem["errors"][0]["loc"] == ["body", "recorded_at"]
    wait = int(early.headers["retry-after"])
    assert problem["retry_after"] == wait and 590 <= wait <= 601
    move_server_clock(monkeypatch, wait)
    later = await post_mine(client, world.patient_user, ahead)
    assert later.status_code == 201, later.text


async def test_a_future_score_with_another_problem_is_not_retryable(client, world):
    both = await post_mine(client, world.patient_user, body(recorded_at=ago(minutes=-15), items=[1] * 6))
    assert both.status_code == 422
    assert both.json()["code"] == "validation_error" and "retry-after" not in both.headers
    assert both.json().get("retry_after") is None


async def test_batch_entries_from_a_clock_ahead_are_retryable_then_accepted(client, world, monkeypatch):
    ahead, broken, fine = body(recorded_at=ago(minutes=-8)), body(recorded_at=ago(minutes=-8), items=[9] * 7), body()
    first = (await post_batch(client, world.patient_user, [ahead, broken, fine])).json()["results"]
    assert [r["status"] for r in first] == [422, 422, 201]
    assert first[0]["problem"]["code"] == "recorded_in_future" and 170 <= first[0]["problem"]["retry_after"] <= 181
    assert first[1]["problem"]["code"] == "validation_error" and first[1]["problem"].get("retry_after") is None
    move_server_clock(monkeypatch, first[0]["problem"]["retry_after"])
    again = (await post_batch(client, world.patient_user, [ahead, fine])).json()["results"]
    assert [r["status"] for r in again] == [201, 200]


# --- idempotency -------------------------------------------------------------------------------------------------


async def test_same_id_and_body_replays_the_stored_score(client, world, app):
    payload = body(note="n")
    first = await post_mine(client, world.patient_user, payload)
    again = await post_mine(client, world.patient_user, payload)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    # The same instant written with another offset is the same body.
    same_instant = await post_mine(client, world.patient_user, {**payload, "recorded_at": "2026-11-20T07:30:00Z"})
    assert same_instant.status_code == 200 and same_instant.json() == first.json()
    assert await count(app, Score) == 1


@pytest.mark.parametrize("change", [{"items": [0, 0, 0, 0, 0, 0, 0]}, {"instrument": "phq9", "items": [0] * 9},
                                    {"recorded_at": "2026-11-20T08:31:00+01:00"}, {"note": "other"}])
async def test_same_id_with_another_body_is_409(client, world, change):
    payload = body()
    await post_mine(client, world.patient_user, payload)
    response = await post_mine(client, world.patient_user, {**payload, **change})
    assert response.status_code == 409
    assert response.json()["code"] == "score_id_taken"
    stored = (await client.get(f"/v1/scores/{payload['id']}", headers=world.patient_user.headers)).json()
    assert stored["items"] == GAD7 and stored["note"] is None


async def test_another_patients_id_is_409_and_reveals_nothing(client, world):
    theirs = body(note="private")
    await post_mine(client, world.other_patient_user, theirs)
    for attempt in (theirs, {**theirs, "note": None}, body(id=theirs["id"])):
        response = await post_mine(client, world.patient_user, attempt)
        assert response.status_code == 409
        assert "private" not in response.text and str(world.other_patient.id) not in response.text
    mine = (await client.get("/v1/me/scores", headers=world.patient_user.headers)).json()
    assert mine["items"] == []


async def test_replay_of_a_retracted_score_does_not_revive_it(client, world):
    payload = body()
    await post_mine(client, world.patient_user, payload)
    retracted = await client.delete(f"/v1/me/scores/{payload['id']}", headers=world.patient_user.headers)
    assert retracted.status_code == 204
    replay = await post_mine(client, world.patient_user, payload)
    assert replay.status_code == 200 and replay.json()["deleted_at"] is not None
    assert (await client.get("/v1/me/scores", headers=world.patient_user.headers)).json()["items"] == []


@pytest.mark.postgres_only
async def test_ten_concurrent_identical_posts_store_one_score(client, world, app):
    payload = body()
    answers = await asyncio.gather(*[post_mine(client, world.patient_user, payload) for _ in range(10)])
    assert sorted(r.status_code for r in answers) == [200] * 9 + [201]
    assert len({r.json()["received_at"] for r in answers}) == 1
    assert await count(app, Score, Score.id == uuid.UUID(payload["id"])) == 1
    assert await count(app, OutboxEvent, OutboxEvent.type == "score.created") == 1


@pytest.mark.postgres_only
async def test_concurrent_batches_with_the_same_entries_store_each_once(client, world, app):
    entries = [body(recorded_at=ago(hours=i)) for i in range(20)]
    answers = await asyncio.gather(*[client.post("/v1/me/scores/batch", json={"scores": entries},
                                                 headers=world.patient_user.headers) for _ in range(4)])
    statuses = [[r["status"] for r in a.json()["results"]] for a in answers]
    for index in range(20):
        assert sorted(s[index] for s in statuses) == [200, 200, 200, 201]
    assert await count(app, Score) == 20
    assert await count(app, OutboxEvent, OutboxEvent.type == "score.created") == 20


# --- clinicians --------------------------------------------------------------------------------------------------


async def test_care_team_clinician_enters_an_in_clinic_score(client, world):
    payload = body(note="entered in clinic; patient seemed guarded")
    response = await client.post(f"/v1/patients/{world.patient.id}/scores", json=payload,
                                 headers=world.clinician.headers)
    assert response.status_code == 201
    assert response.json()["source"] == "clinician" and response.json()["entered_by"] == str(world.clinician.id)
    assert response.json()["note"] == payload["note"]
    # The patient sees the score but not the clinician's note.
    mine = (await client.get("/v1/me/scores", headers=world.patient_user.headers)).json()["items"]
    assert [(s["id"], s["source"], s["note"]) for s in mine] == [(payload["id"], "clinician", None)]


async def test_patient_may_use_the_patient_route_for_themselves(client, world):
    response = await client.post(f"/v1/patients/{world.patient.id}/scores", json=body(),
                                 headers=world.patient_user.headers)
    assert response.status_code == 201 and response.json()["source"] == "patient"


# --- batch -----------------------------------------------------------------------------------------------------


async def post_batch(client, actor, entries):
    return await client.post("/v1/me/scores/batch", json={"scores": entries}, headers=actor.headers)


async def test_batch_entries_succeed_or_fail_on_their_own(client, world, app):
    taken = body()
    await post_mine(client, world.patient_user, taken)
    theirs = body()
    await post_mine(client, world.other_patient_user, theirs)
    good, phq9 = body(), body(instrument="phq9", items=[1] * 9)
    entries = [
        good,                                        # 0 created
        {**good, "items": [1] * 6},                  # 1 invalid (and not a replay of entry 0)
        taken,                                       # 2 replay of an earlier single post
        {**taken, "note": "changed"},                # 3 conflict with own stored score
        theirs,                                      # 4 another patient's id
        phq9,                                        # 5 created
        body(items=[1, 1, 1, 1.5, 1, 1, 1]),         # 6 invalid: not an integer
        body(recorded_at=ago(minutes=-10)),          # 7 invalid: future
        "not an object",                             # 8 invalid
        {**body(), "total": 3},                      # 9 invalid: server's field
        good,                                        # 10 repeated in the same batch: replay
        {**phq9, "note": "x"},                       # 11 repeated with another body: conflict
    ]
    response = await post_batch(client, world.patient_user, entries)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 200, 409, 409, 201, 422, 422, 422, 422, 200, 409]
    assert [r["id"] for r in results] == [e["id"] if isinstance(e, dict) else None for e in entries]
    assert results[0]["score"]["total"] == 11 and results[5]["score"]["severity"] == "mild"
    assert results[10]["score"] == results[0]["score"]
    assert "problem" not in results[0] and "score" not in results[1]
    assert results[1]["problem"]["status"] == 422 and results[1]["problem"]["errors"][0]["loc"] == [
        "body", "scores", 1, "items"]
    assert results[6]["problem"]["errors"][0]["loc"] == ["body", "scores", 6, "items", 3]
    assert results[9]["problem"]["errors"][0]["loc"] == ["body", "scores", 9, "total"]
    assert results[3]["problem"]["status"] == results[4]["problem"]["status"] == 409
    assert results[3]["problem"]["detail"] == results[4]["problem"]["detail"]
    assert str(world.other_patient.id) not in response.text
    assert await count(app, Score, Score.patient_id == world.patient.id) == 3
    assert await count(app, OutboxEvent, OutboxEvent.type == "score.created") == 4  # 2 single posts + 2 batch


async def test_a_retried_batch_changes_nothing(client, world, app):
    entries = [body(recorded_at=ago(days=i)) for i in range(30)] + [body(items=[9])]
    first = (await post_batch(client, world.patient_user, entries)).json()["results"]
    snapshot = (await client.get("/v1/me/scores", params={"limit": 200}, headers=world.patient_user.headers)).json()
    outbox_rows = await count(app, OutboxEvent)
    again = (await post_batch(client, world.patient_user, entries)).json()["results"]
    assert [r["status"] for r in first] == [201] * 30 + [422]
    assert [r["status"] for r in again] == [200] * 30 + [422]
    assert [r["score"] for r in again[:30]] == [r["score"] for r in first[:30]]
    after = (await client.get("/v1/me/scores", params={"limit": 200}, headers=world.patient_user.headers)).json()
    assert after["items"] == snapshot["items"]
    assert await count(app, OutboxEvent) == outbox_rows == 30


async def test_batch_size_is_capped_at_500(client, world, app):
    entries = [body(recorded_at=ago(minutes=i)) for i in range(501)]
    response = await post_batch(client, world.patient_user, entries)
    assert response.status_code == 422
    assert await count(app, Score) == 0
    full = await post_batch(client, world.patient_user, entries[:500])
    assert full.status_code == 200 and {r["status"] for r in full.json()["results"]} == {201}
    assert await count(app, Score) == 500


def worst_case_batch() -> bytes:
    """500 valid entries as long as they get, as compact ASCII-only JSON (Python's json.dumps default): the longest
    instrument at its widest answers, recorded_at with microseconds and an offset, and a note of the maximum length
    made of emoji, each escaped as a 12-byte surrogate pair."""
    widest = max(INSTRUMENTS.values(), key=lambda i: len(i.items) * len(str(i.item_max)))
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=-9, minutes=-30)))
    entries = [body(instrument=widest.code, items=[widest.item_max] * len(widest.items), note="\U0001F60C" * MAX_NOTE,
                    recorded_at=(now - dt.timedelta(minutes=i, microseconds=123456)).isoformat())
               for i in range(MAX_BATCH)]
    return json.dumps({"scores": entries}, separators=(",", ":")).encode()


async def test_a_full_batch_with_the_longest_notes_fits_the_body_limit(client, world, app):
    raw = worst_case_batch()
    assert len(raw) > 12_000_000 > app.state.settings.max_body_bytes  # far beyond every other route's limit
    response = await client.post("/v1/me/scores/batch", content=raw, params={"return": "minimal"},
                                 headers={**world.patient_user.headers, "Content-Type": "application/json"})
    assert response.status_code == 200, response.text[:500]
    assert {r["status"] for r in response.json()["results"]} == {201}
    assert await count(app, Score) == MAX_BATCH
    # One byte more than the route's own limit is still a 413, and other routes keep MAX_BODY_BYTES.
    padded = raw[:-1] + b" " * (MAX_BATCH_BODY_BYTES - len(raw) + 1) + raw[-1:]
    too_large = await client.post("/v1/me/scores/batch", content=padded,
                                  headers={**world.patient_user.headers, "Content-Type": "application/json"})
    assert too_large.status_code == 413 and too_large.json()["code"] == "payload_too_large"
    single = await client.post("/v1/me/scores", content=b" " * app.state.settings.max_body_bytes + b"{}",
                               headers={**world.patient_user.headers, "Content-Type": "application/json"})
    assert single.status_code == 413


@pytest.mark.parametrize("payload", [{}, {"scores": []}, {"scores": "x"}, {"scores": [], "extra": 1}])
async def test_malformed_batches_are_422(client, world, payload):
    response = await client.post("/v1/me/scores/batch", json=payload, headers=world.patient_user.headers)
    assert response.status_code == 422


# --- retraction ------------------------------------------------------------------------------------------------


async def test_retraction_tombstones_idempotently(client, world, app):
    payload = body()
    await post_mine(client, world.patient_user, payload)
    url = f"/v1/me/scores/{payload['id']}"
    assert (await client.delete(url, headers=world.patient_user.headers)).status_code == 204
    stored = (await rows(app, Score, Score.id == uuid.UUID(payload["id"])))[0]
    assert stored.deleted_at is not None and stored.updated_at == stored.deleted_at
    assert (await client.delete(url, headers=world.patient_user.headers)).status_code == 204
    assert (await rows(app, Score, Score.id == uuid.UUID(payload["id"])))[0].deleted_at == stored.deleted_at
    assert (await client.get("/v1/me/scores", headers=world.patient_user.headers)).json()["items"] == []
    read = (await client.get(f"/v1/scores/{payload['id']}", headers=world.clinician.headers)).json()
    assert read["deleted_at"] is not None and read["items"] == GAD7  # kept for the record


async def test_retracting_unknown_or_someone_elses_score_is_404(client, world):
    theirs = body()
    await post_mine(client, world.other_patient_user, theirs)
    for score_id in (theirs["id"], new_id()):
        response = await client.delete(f"/v1/me/scores/{score_id}", headers=world.patient_user.headers)
        assert response.status_code == 404
    assert (await client.get(f"/v1/scores/{theirs['id']}", headers=world.other_patient_user.headers)).json()[
        "deleted_at"] is None


# --- lists -----------------------------------------------------------------------------------------------------


async def test_list_filters_and_order(client, world):
    base = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
    made = []
    for day in range(6):
        instrument, items = ("gad7", GAD7) if day % 2 == 0 else ("phq9", [1] * 9)
        payload = body(instrument=instrument, items=items, recorded_at=(base + dt.timedelta(days=day)).isoformat())
        await post_mine(client, world.patient_user, payload)
        made.append(payload["id"])
    await post_mine(client, world.other_patient_user, body())

    async def ids(**params):
        response = await client.get(f"/v1/patients/{world.patient.id}/scores", params=params,
                                    headers=world.clinician.headers)
        assert response.status_code == 200
        return [s["id"] for s in response.json()["items"]]

    assert await ids() == made[::-1]
    assert await ids(instrument="phq9") == [made[5], made[3], made[1]]
    # from inclusive, to exclusive, in any offset
    assert await ids(**{"from": "2026-11-02T13:00:00+01:00", "to": "2026-11-04T12:00:00Z"}) == [made[2], made[1]]
    for bad in ({"instrument": "nope"}, {"from": "2026-11-02T12:00:00"}, {"limit": 201}, {"limit": 0},
                {"cursor": "garbage"}, {"updated_since": "2026-11-02"}):
        response = await client.get(f"/v1/patients/{world.patient.id}/scores", params=bad,
                                    headers=world.clinician.headers)
        assert response.status_code == 422, bad


async def test_cursor_pages_neither_skip_nor_repeat_under_concurrent_inserts(client, world):
    base = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    original = []
    for i in range(23):
        # Pairs share a recorded_at, so ordering must fall back to the id.
        payload = body(recorded_at=(base + dt.timedelta(hours=i // 2)).isoformat())
        await post_mine(client, world.patient_user, payload)
        original.append(payload["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/me/scores", params=params, headers=world.patient_user.headers)).json()
        seen += [s["id"] for s in page["items"]]
        # Between pages another device adds scores older, newer and equal to what was already read.
        for recorded in (base - dt.timedelta(days=1), base + dt.timedelta(days=30), base + dt.timedelta(hours=5)):
            await post_mine(client, world.patient_user, body(recorded_at=recorded.isoformat()))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(original) <= set(seen)


# --- authorisation ---------------------------------------------------------------------------------------------

# Scores of world.patient: the patient enters its own; any care-team clinician (prescriber, monitor or therapist)
# enters in-clinic scores; admins read but do not enter them.
PATIENT_ONLY = by_role(admin=403, clinician=403, patient=200)
SCORE_ROUTES = [
    Route("post_my_score", "POST", lambda w: "/v1/me/scores", {**PATIENT_ONLY, "patient_user": 201,
                                                                "other_patient_user": 201}, json=lambda w: body()),
    Route("post_my_batch", "POST", lambda w: "/v1/me/scores/batch", PATIENT_ONLY,
          json=lambda w: {"scores": [body()]}),
    Route("list_my_scores", "GET", lambda w: "/v1/me/scores", PATIENT_ONLY),
    Route("retract_my_score", "DELETE", lambda w: f"/v1/me/scores/{w.extra['mine']['id']}",
          {**PATIENT_ONLY, "patient_user": 204, "other_patient_user": 404}),
    Route("post_patient_score", "POST", lambda w: f"/v1/patients/{w.patient.id}/scores",
          on_patient(201, admin=403, scope=Scope.scores_write),
          json=lambda w: body()),
    Route("list_patient_scores", "GET", lambda w: f"/v1/patients/{w.patient.id}/scores",
          on_patient(200, scope=Scope.scores_read)),
    Route("read_score", "GET", lambda w: f"/v1/scores/{w.extra['mine']['id']}", on_patient(200, scope=Scope.scores_read)),
    Route("read_in_clinic_score", "GET", lambda w: f"/v1/scores/{w.extra['in_clinic']['id']}",
          on_patient(200, scope=Scope.scores_read)),
    # A self-report is retracted by the patient; an in-clinic score by the care team.
    Route("retract_self_report", "DELETE", lambda w: f"/v1/scores/{w.extra['mine']['id']}",
          on_patient(403, patient=204)),
    Route("retract_in_clinic_score", "DELETE", lambda w: f"/v1/scores/{w.extra['in_clinic']['id']}",
          on_patient(204, admin=403, patient=403)),
]


@pytest.mark.parametrize(("route", "caller"), cells(SCORE_ROUTES), ids=cell_id)
async def test_access(client, world, app, route, caller):
    world.extra["mine"] = body()
    world.extra["in_clinic"] = body(note="clinician's note")
    await post_mine(client, world.patient_user, world.extra["mine"])
    await post_patient(client, world.clinician, world.patient.id, world.extra["in_clinic"])
    before = await count(app, Score)
    response = await check_route(client, world, route, caller)
    if response.status_code >= 400:
        assert "clinician's note" not in response.text
        assert await count(app, Score) == before
        assert await count(app, Score, Score.deleted_at.is_not(None)) == 0
    if response.status_code == 200 and caller == "patient_user":
        assert "clinician's note" not in response.text
    if route.method == "GET" and response.status_code == 200 and caller in ("other_patient_user",):
        assert world.extra["mine"]["id"] not in response.text


@pytest.mark.parametrize("caller", ["other_clinician", "other_patient_user", "admin_b", "clinician_b"])
async def test_an_invisible_score_looks_exactly_like_a_missing_one(client, world, caller):
    mine = body()
    await post_mine(client, world.patient_user, mine)
    headers = world.actor(caller).headers
    strip = lambda r: {k: v for k, v in r.json().items() if k not in ("request_id", "instance")}  # noqa: E731
    for method in ("GET", "DELETE"):
        hidden = await client.request(method, f"/v1/scores/{mine['id']}", headers=headers)
        unknown = await client.request(method, f"/v1/scores/{new_id()}", headers=headers)
        assert hidden.status_code == unknown.status_code == 404
        assert strip(hidden) == strip(unknown)


async def test_a_patient_cannot_retract_an_in_clinic_score(client, world):
    in_clinic = body(instrument="phq9", items=[2, 2, 2, 2, 2, 2, 2, 2, 0])
    await post_patient(client, world.clinician, world.patient.id, in_clinic)
    for url in (f"/v1/me/scores/{in_clinic['id']}", f"/v1/scores/{in_clinic['id']}"):
        response = await client.delete(url, headers=world.patient_user.headers)
        assert response.status_code == 403
    listed = await client.get(f"/v1/patients/{world.patient.id}/scores", headers=world.clinician.headers)
    assert [s["id"] for s in listed.json()["items"]] == [in_clinic["id"]]  # still on the clinician's chart
    deletes = [e for e in await audit_events(client, world, world.patient.id) if e[0] == "score.delete"]
    assert deletes == [("score.delete", "denied", in_clinic["id"])] * 2


async def test_the_care_team_retracts_an_in_clinic_score_but_not_a_self_report(client, world):
    mine, in_clinic = body(), body()
    await post_mine(client, world.patient_user, mine)
    await post_patient(client, world.monitor, world.patient.id, in_clinic)
    assert (await client.delete(f"/v1/scores/{mine['id']}", headers=world.clinician.headers)).status_code == 403
    assert (await client.delete(f"/v1/scores/{in_clinic['id']}", headers=world.therapist.headers)).status_code == 204
    read = await client.get(f"/v1/scores/{in_clinic['id']}", headers=world.clinician.headers)
    assert read.json()["deleted_at"] is not None


async def test_posting_someone_elses_score_id_is_the_same_409_whatever_the_body(client, world):
    # A patient who guesses the note on a clinician's in-clinic score must not learn that the guess was right.
    in_clinic = body(note="Discussed a possible relapse")
    await post_patient(client, world.clinician, world.patient.id, in_clinic)
    right = await post_mine(client, world.patient_user, in_clinic)
    wrong = await post_mine(client, world.patient_user, {**in_clinic, "note": "A wrong guess"})
    batch = await post_batch(client, world.patient_user, [in_clinic])
    strip = lambda r: {k: v for k, v in r.json().items() if k not in ("request_id", "instance")}  # noqa: E731
    assert right.status_code == wrong.status_code == 409
    assert strip(right) == strip(wrong)
    assert batch.json()["results"][0]["status"] == 409
    # Another clinician on the team sending the same body is not its author either.
    again = await post_patient(client, world.monitor, world.patient.id, in_clinic)
    assert again.status_code == 409
    # The author's own retry is still a replay.
    assert (await post_patient(client, world.clinician, world.patient.id, in_clinic)).status_code == 200


async def test_unknown_patient_is_404_for_everyone(client, world):
    for actor in ("admin", "clinician", "patient_user"):
        url = f"/v1/patients/{new_id()}/scores"
        assert (await client.get(url, headers=world.actor(actor).headers)).status_code == 404
        assert (await client.post(url, json=body(), headers=world.actor(actor).headers)).status_code == 404


# --- audit and outbox ------------------------------------------------------------------------------------------


async def audit_events(client, world, patient_id):
    response = await client.get("/v1/audit-events", params={"patient_id": str(patient_id), "limit": 200},
                                headers=world.admin.headers)
    return [(e["action"], e["outcome"], e["resource_id"]) for e in response.json()["items"]][::-1]


async def test_reads_and_writes_are_audited(client, world):
    one, two = body(), body()
    await post_mine(client, world.patient_user, one)
    await post_mine(client, world.patient_user, one)
    await post_mine(client, world.patient_user, {**one, "note": "changed"})
    await post_batch(client, world.patient_user, [two])
    await client.get("/v1/me/scores", headers=world.patient_user.headers)
    await client.get(f"/v1/patients/{world.patient.id}/scores", headers=world.clinician.headers)
    await client.get(f"/v1/scores/{two['id']}", headers=world.clinician.headers)
    await client.delete(f"/v1/me/scores/{one['id']}", headers=world.patient_user.headers)
    await client.get(f"/v1/patients/{world.patient.id}/scores", headers=world.other_clinician.headers)
    assert await audit_events(client, world, world.patient.id) == [
        ("score.create", "success", one["id"]),
        ("score.create", "success", one["id"]),
        ("score.create", "denied", one["id"]),
        ("score.batch", "success", str(world.patient.id)),
        ("score.create", "success", two["id"]),
        ("score.list", "success", str(world.patient.id)),
        ("score.list", "success", str(world.patient.id)),
        ("score.read", "success", two["id"]),
        ("score.delete", "success", one["id"]),
        ("score.list", "denied", str(world.patient.id)),
    ]


async def test_outbox_has_one_event_per_created_score_and_none_for_replays(client, world, app):
    payload = body()
    await post_mine(client, world.patient_user, payload)
    await post_mine(client, world.patient_user, payload)
    await post_mine(client, world.patient_user, {**payload, "note": "conflict"})
    await post_mine(client, world.patient_user, body(items=[7]))
    events = await rows(app, OutboxEvent)
    assert [(e.type, e.organization_id, e.data) for e in events] == [
        ("score.created", world.org_a.id, {"score_id": payload["id"], "patient_id": str(world.patient.id)})]


async def test_nul_in_a_note_is_422_alone_in_a_batch(client, world):
    good = {"id": str(uuid.uuid4()), "instrument": "suds", "items": [40], "recorded_at": "2026-11-20T08:30:00+01:00"}
    bad = {**good, "id": str(uuid.uuid4()), "note": "a\x00b"}
    single = await client.post("/v1/me/scores", json=bad, headers=world.patient_user.headers)
    assert single.status_code == 422
    batch = await client.post("/v1/me/scores/batch", json={"scores": [good, bad]}, headers=world.patient_user.headers)
    assert [r["status"] for r in batch.json()["results"]] == [201, 422]
