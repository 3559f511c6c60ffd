"""Delta sync of plans and sessions, as of scores: `updated_since` answers every change since the watermark, oldest
change first, with `sync_watermark` round-tripping through the pages; every write that changes a plan or a session
(status, edits, signing, addenda) is a change. Nothing is ever deleted, so there are no tombstones to hand out."""

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from api import sync
from api.sync import SYNC_MARGIN
from tests.plan_helpers import new_plan, patch_plan, plan_body, set_status
from tests.session_helpers import add_addendum, new_session, sign
from tests.test_errors import assert_problem

FROM_SCRATCH = "2000-01-01T00:00:00Z"


def instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


async def changes(client, actor, url: str, since: str, *, limit: int = 200) -> tuple[list[dict], str]:
    """Every page of a delta sync; the watermark to store (the first page's, which every page repeats)."""
    items, cursor, watermarks = [], None, set()
    while True:
        params = {"updated_since": since, "limit": limit, **({"cursor": cursor} if cursor else {})}
        answer = await client.get(url, params=params, headers=actor.headers)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["items"]
        watermarks.add(page["sync_watermark"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(watermarks) == 1
    return items, watermarks.pop()


def assert_oldest_change_first(items: list[dict], since: str) -> None:
    stamps = [(instant(item["updated_at"]), item["id"]) for item in items]
    assert stamps == sorted(stamps)
    assert all(stamp >= instant(since) for stamp, _ in stamps)


@pytest.fixture
def watermark_is_now(monkeypatch):
    """The server hands out watermarks without the margin, so that "nothing changed since" is visible in a test
    (with the margin every change of the last five minutes is handed out again, which is the point of it)."""
    real = sync.utcnow
    monkeypatch.setattr(sync, "utcnow", lambda: real() + SYNC_MARGIN)


async def test_plans_changed_since_the_watermark_oldest_change_first(client, world):
    url = f"/v1/patients/{world.patient.id}/plans"
    first = await new_plan(client, world)
    second = await new_plan(client, world, plan_body(title="Maintenance"))
    everything, _ = await changes(client, world.clinician, url, FROM_SCRATCH)
    assert [p["id"] for p in everything] == [first["id"], second["id"]]

    activated = await set_status(client, world.clinician, first["id"], "active")
    assert activated.status_code == 200
    assert instant(activated.json()["updated_at"]) > instant(second["updated_at"])
    since_second, _ = await changes(client, world.clinician, url, second["updated_at"])
    assert [(p["id"], p["status"]) for p in since_second] == [(second["id"], "draft"), (first["id"], "active")]
    since_activation, _ = await changes(client, world.clinician, url, activated.json()["updated_at"])
    assert [p["id"] for p in since_activation] == [first["id"]]

    edited = await patch_plan(client, world.clinician, second["id"], {"title": "Maintenance, monthly"},
                              second["etag"])
    assert edited.status_code == 200 and instant(edited.json()["updated_at"]) > instant(activated.json()["updated_at"])
    latest, _ = await changes(client, world.clinician, url, activated.json()["updated_at"])
    assert [(p["id"], p["title"]) for p in latest] == [(first["id"], first["title"]),
                                                       (second["id"], "Maintenance, monthly")]
    assert_oldest_change_first(latest, activated.json()["updated_at"])
    # The patient syncs their own plans the same way, without clinician-only content.
    own, _ = await changes(client, world.patient_user, url, FROM_SCRATCH)
    assert [p["id"] for p in own] == [first["id"], second["id"]]
    assert all("notes" not in (p["suitability"] or {}) for p in own)


async def test_the_plan_watermark_round_trips_through_pages(client, world, watermark_is_now):
    url = f"/v1/patients/{world.patient.id}/plans"
    made = [await new_plan(client, world, plan_body(title=f"Plan {i}")) for i in range(5)]
    synced, watermark = await changes(client, world.patient_user, url, FROM_SCRATCH, limit=2)
    assert [p["id"] for p in synced] == [p["id"] for p in made]
    assert instant(watermark) >= max(instant(p["updated_at"]) for p in made)
    nothing, same = await changes(client, world.patient_user, url, watermark)
    assert nothing == [] and instant(same) >= instant(watermark)
    changed = await set_status(client, world.clinician, made[2]["id"], "active")
    assert changed.status_code == 200
    after, _ = await changes(client, world.patient_user, url, watermark)
    assert [(p["id"], p["status"]) for p in after] == [(made[2]["id"], "active")]


async def test_sessions_appear_to_the_patient_when_signed_and_change_with_addenda(client, world, watermark_is_now):
    url = f"/v1/patients/{world.patient.id}/sessions"
    draft = await new_session(client, world)
    _, patient_mark = await changes(client, world.patient_user, url, FROM_SCRATCH)
    staff, staff_mark = await changes(client, world.clinician, url, FROM_SCRATCH)
    assert [s["id"] for s in staff] == [draft["id"]]
    # The patient does not see drafts; signing is the change that shows the session to them.
    assert (await changes(client, world.patient_user, url, patient_mark))[0] == []
    signed = await sign(client, world.clinician, draft["id"])
    assert signed.status_code == 200
    shown, patient_mark = await changes(client, world.patient_user, url, patient_mark)
    assert [(s["id"], s["status"], s["updated_at"]) for s in shown] == [
        (draft["id"], "signed", signed.json()["signed_at"])]
    resigned, staff_mark = await changes(client, world.clinician, url, staff_mark)
    assert [s["status"] for s in resigned] == ["signed"]

    # An addendum is a change of the session: the care team gets it with the addendum.
    addendum = await add_addendum(client, world.clinician, draft["id"], "Called the next day: feeling well.")
    assert addendum.status_code == 201
    amended, _ = await changes(client, world.clinician, url, staff_mark)
    assert [(s["id"], s["updated_at"]) for s in amended] == [(draft["id"], addendum.json()["created_at"])]
    assert [a["id"] for a in amended[0]["addenda"]] == [addendum.json()["id"]]
    assert amended[0]["revision"] == signed.json()["revision"]


async def test_every_draft_edit_is_a_change(client, world):
    url = f"/v1/patients/{world.patient.id}/sessions"
    draft = await new_session(client, world)
    edited = await client.patch(f"/v1/sessions/{draft['id']}", json={"post_suds": 20},
                                headers={**world.clinician.headers, "If-Match": draft["etag"]})
    assert edited.status_code == 200, edited.text
    assert instant(edited.json()["updated_at"]) > instant(draft["updated_at"])
    since_edit, _ = await changes(client, world.clinician, url, edited.json()["updated_at"])
    assert [(s["id"], s["post_suds"]) for s in since_edit] == [(draft["id"], 20)]


@pytest.mark.parametrize("what", ["plans", "sessions"])
async def test_a_misspelt_updated_since_is_422_not_a_full_list(client, world, what):
    answer = await client.get(f"/v1/patients/{world.patient.id}/{what}", params={"updatedSince": FROM_SCRATCH},
                              headers=world.clinician.headers)
    problem = assert_problem(answer, 422)
    assert problem["errors"][0]["loc"] == ["query", "updatedSince"]
    assert problem["errors"][0]["type"] == "unknown_parameter"


@pytest.mark.parametrize(("what", "status"), [("plans", "active"), ("sessions", "draft")])
async def test_a_status_filter_cannot_be_synced(client, world, what, status):
    """A record that left the filter (a plan paused, a draft signed) would just stop appearing."""
    answer = await client.get(f"/v1/patients/{world.patient.id}/{what}",
                              params={"updated_since": FROM_SCRATCH, "status": status}, headers=world.clinician.headers)
    problem = assert_problem(answer, 422)
    assert problem["errors"] == [{"loc": ["query", "status"], "msg": "Not combinable with updated_since",
                                  "type": "filter_with_sync"}]
    plain = await client.get(f"/v1/patients/{world.patient.id}/{what}", params={"status": status},
                             headers=world.clinician.headers)
    assert plain.status_code == 200 and "sync_watermark" in plain.json()


@pytest.mark.parametrize("what", ["plans", "sessions"])
@pytest.mark.parametrize("since", ["yesterday", "2026-11-20T08:30:00", "0001-01-01T00:00:00+01:00", "1899-12-31T23:00:00Z"])
async def test_a_bad_updated_since_is_422(client, world, what, since):
    answer = await client.get(f"/v1/patients/{world.patient.id}/{what}", params={"updated_since": since},
                              headers=world.clinician.headers)
    assert assert_problem(answer, 422)["errors"][0]["loc"] == ["query", "updated_since"]


async def test_someone_elses_patient_is_404_with_or_without_sync(client, world):
    for what in ("plans", "sessions"):
        answer = await client.get(f"/v1/patients/{world.patient.id}/{what}", params={"updated_since": FROM_SCRATCH},
                                  headers=world.clinician_b.headers)
        assert_problem(answer, 404)


async def test_the_database_lets_a_signed_sessions_change_time_move_forward_and_nothing_else(client, world, app):
    signed = await new_session(client, world)
    assert (await sign(client, world.clinician, signed["id"])).status_code == 200
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    earlier = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    on_sqlite = app.state.engine.dialect.name == "sqlite"

    # Raw statements, as any other path to the database would write: SQLite stores naive UTC and hex ids.
    row_id = signed["id"].replace("-", "") if on_sqlite else signed["id"]

    def stamp(value: dt.datetime):
        return value.replace(tzinfo=None) if on_sqlite else value

    async with app.state.sessions() as session:
        await session.exec(text("UPDATE dosing_session SET updated_at = :at WHERE id = :id"),
                           params={"at": stamp(later), "id": row_id})
        await session.commit()
    for statement, values in [("UPDATE dosing_session SET dose_mg = 99 WHERE id = :id", {}),
                              ("UPDATE dosing_session SET dose_mg = 99, updated_at = :at WHERE id = :id",
                               {"at": stamp(later + dt.timedelta(minutes=1))}),
                              ("UPDATE dosing_session SET updated_at = :at WHERE id = :id", {"at": stamp(earlier)}),
                              ("DELETE FROM dosing_session WHERE id = :id", {})]:
        async with app.state.sessions() as session:
            with pytest.raises(DBAPIError, match="signed dosing session cannot be changed"):
                await session.exec(text(statement), params={**values, "id": row_id})
    current = await client.get(f"/v1/sessions/{signed['id']}", headers=world.clinician.headers)
    assert instant(current.json()["updated_at"]) == later and current.json()["dose_mg"] == signed["dose_mg"]
