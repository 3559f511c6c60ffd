"""Offline sync: a phone's queued entries arrive exactly once through lossy retries, and delta sync with the
server's watermark shows another device the same set, tombstones included."""

import datetime as dt
import random
import uuid

from api.instruments.registry import INSTRUMENTS
from api.sync import SYNC_MARGIN
from models import Score
from tests.conftest import new_id
from tests.test_scores import body, post_mine

FROM_SCRATCH = "2000-01-01T00:00:00Z"
NEW_YORK = dt.timezone(dt.timedelta(hours=-5))


class Phone:
    """The patient's phone: answers questionnaires offline, then syncs through a connection that drops answers."""

    def __init__(self, client, actor, rng: random.Random) -> None:
        self.client, self.actor, self.rng = client, actor, rng
        self.entries: dict[str, dict] = {}
        self.deleted: set[str] = set()
        self.lost_answers = 0

    def answer_offline(self, count: int) -> list[dict]:
        now = dt.datetime.now(NEW_YORK)
        made = []
        for i in range(count):
            instrument = self.rng.choice(list(INSTRUMENTS.values()))
            items = [self.rng.randint(instrument.item_min, instrument.item_max) for _ in instrument.items]
            recorded = now - dt.timedelta(days=10) + dt.timedelta(minutes=67 * i)
            entry = body(instrument=instrument.code, items=items, recorded_at=recorded.isoformat(),
                         note=self.rng.choice([None, "", f"entry {i}"]))
            self.entries[entry["id"]] = entry
            made.append(entry)
        return made

    async def send(self, method: str, url: str, **kwargs):
        """Up to 3 attempts; the answer of an earlier attempt may be lost after the server acted on it."""
        for attempt in range(3):
            response = await self.client.request(method, url, headers=self.actor.headers, **kwargs)
            if attempt < 2 and self.rng.random() < 0.5:
                self.lost_answers += 1
                continue
            return response
        raise AssertionError("unreachable")

    async def sync(self, queue: list[dict], batch_size: int) -> None:
        for start in range(0, len(queue), batch_size):
            batch = queue[start:start + batch_size]
            response = await self.send("POST", "/v1/me/scores/batch", json={"scores": batch})
            assert response.status_code == 200
            results = response.json()["results"]
            assert [r["id"] for r in results] == [e["id"] for e in batch]
            assert {r["status"] for r in results} <= {200, 201}, results

    async def retract(self, score_id: str) -> None:
        response = await self.send("DELETE", f"/v1/me/scores/{score_id}")
        assert response.status_code == 204
        self.deleted.add(score_id)

    @property
    def live(self) -> set[str]:
        return set(self.entries) - self.deleted


async def delta_sync(client, actor, since: str, replica: dict[str, dict], *, limit: int = 50) -> str:
    """Pages through every change since `since` into `replica` (upsert by id); returns the next `updated_since`."""
    watermark, cursor, previous = None, None, None
    while True:
        params = {"updated_since": since, "limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/v1/me/scores", params=params, headers=actor.headers)
        assert response.status_code == 200
        page = response.json()
        # Every page of one sync answers the first page's watermark (carried in the cursor): see docs/scores.md.
        assert watermark is None or page["sync_watermark"] == watermark
        watermark = page["sync_watermark"]
        for score in page["items"]:
            key = (score["updated_at"], score["id"])
            assert previous is None or key > previous  # oldest change first, never repeated within a sync
            previous = key
            replica[score["id"]] = score
        cursor = page["next_cursor"]
        if cursor is None:
            return watermark


async def all_live(client, actor) -> list[dict]:
    scores, cursor = [], None
    while True:
        params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/me/scores", params=params, headers=actor.headers)).json()
        scores += page["items"]
        if not (cursor := page["next_cursor"]):
            return scores


async def test_offline_phone_ends_with_exactly_its_entries_and_a_second_device_sees_them(client, world, app):
    phone = Phone(client, world.patient_user, random.Random(4))
    tablet_full: dict[str, dict] = {}
    tablet_incremental: dict[str, dict] = {}

    queue = phone.answer_offline(200)
    await phone.sync(queue[:80], batch_size=40)
    # The tablet syncs once midway, then only incrementally from the watermark it was given.
    watermark = await delta_sync(client, world.patient_user, FROM_SCRATCH, tablet_incremental, limit=30)
    await phone.sync(queue[80:], batch_size=40)
    # A whole second pass over the queue, as after a crash that lost the phone's record of what was sent.
    await phone.sync(queue, batch_size=70)
    for score_id in random.Random(5).sample(sorted(phone.entries), 5):
        await phone.retract(score_id)
    assert phone.lost_answers > 0

    on_server = await all_live(client, world.patient_user)
    assert sorted(s["id"] for s in on_server) == sorted(phone.live)
    for score in on_server:
        sent = phone.entries[score["id"]]
        scored = INSTRUMENTS[sent["instrument"]].score(sent["items"])
        assert (score["items"], score["total"], score["severity"], score["note"]) == (
            sent["items"], scored.total, scored.severity, sent["note"])
        assert score["recorded_utc_offset"] == "-05:00"
        assert dt.datetime.fromisoformat(score["recorded_at"]) == dt.datetime.fromisoformat(sent["recorded_at"])
    async with app.state.sessions() as session:
        assert len((await session.exec(Score.__table__.select())).all()) == 200

    await delta_sync(client, world.patient_user, FROM_SCRATCH, tablet_full, limit=45)
    await delta_sync(client, world.patient_user, watermark, tablet_incremental, limit=25)
    for replica in (tablet_full, tablet_incremental):
        assert set(replica) == set(phone.entries)
        assert {i for i, s in replica.items() if s["deleted_at"] is None} == phone.live
        assert {i for i, s in replica.items() if s["deleted_at"] is not None} == phone.deleted
    assert tablet_full == tablet_incremental


async def test_delta_sync_orders_by_change_time_and_carries_tombstones(client, world):
    first, second = body(), body()
    await post_mine(client, world.patient_user, first)
    await post_mine(client, world.patient_user, second)
    await client.delete(f"/v1/me/scores/{first['id']}", headers=world.patient_user.headers)
    page = (await client.get("/v1/me/scores", params={"updated_since": FROM_SCRATCH},
                             headers=world.patient_user.headers)).json()
    # The retraction is the newest change, so the tombstone comes last.
    assert [(s["id"], s["deleted_at"] is None) for s in page["items"]] == [(second["id"], True), (first["id"], False)]
    normal = (await client.get("/v1/me/scores", headers=world.patient_user.headers)).json()
    assert [s["id"] for s in normal["items"]] == [second["id"]]
    # Filters apply to delta sync too.
    phq9 = (await client.get("/v1/me/scores", params={"updated_since": FROM_SCRATCH, "instrument": "phq9"},
                             headers=world.patient_user.headers)).json()
    assert phq9["items"] == []


async def test_watermark_is_server_time_minus_the_margin(client, world):
    before = dt.datetime.now(dt.UTC)
    page = (await client.get("/v1/me/scores", headers=world.patient_user.headers)).json()
    after = dt.datetime.now(dt.UTC)
    watermark = dt.datetime.fromisoformat(page["sync_watermark"])
    assert before - SYNC_MARGIN <= watermark <= after - SYNC_MARGIN
    assert page["sync_watermark"].endswith("Z")


async def test_a_change_committed_late_is_not_missed(client, world, app):
    """A transaction that stamped updated_at just before a sync read, but committed after it, is still delivered."""
    replica: dict[str, dict] = {}
    await post_mine(client, world.patient_user, body())
    read_at = dt.datetime.now(dt.UTC)
    watermark = await delta_sync(client, world.patient_user, FROM_SCRATCH, replica)
    assert len(replica) == 1
    # Now "commit" a score stamped a moment before that read.
    stamped = read_at - dt.timedelta(seconds=2)
    late = Score(id=uuid.uuid4(), patient_id=world.patient.id, instrument="suds", items=[30], total=30,
                 recorded_at=stamped, recorded_offset_minutes=0, received_at=stamped, source="patient",
                 entered_by=world.patient_user.id, updated_at=stamped)
    async with app.state.sessions() as session:
        session.add(late)
        await session.commit()
    await delta_sync(client, world.patient_user, watermark, replica)
    assert str(late.id) in replica


async def test_a_phone_clock_running_behind_or_a_bogus_watermark_loses_nothing(client, world):
    """The phone's clock never enters the comparison: only server-given watermarks do."""
    replica: dict[str, dict] = {}
    watermark = await delta_sync(client, world.patient_user, FROM_SCRATCH, replica)
    # A phone whose clock is three days behind answers; its recorded_at is in its (wrong) past, which is fine.
    skewed = body(recorded_at=(dt.datetime.now(NEW_YORK) - dt.timedelta(days=3)).isoformat())
    assert (await post_mine(client, world.patient_user, skewed)).status_code == 201
    await delta_sync(client, world.patient_user, watermark, replica)
    assert skewed["id"] in replica
    # A client that sends its own (future) clock instead of a watermark gets nothing, but the server's watermark
    # it is handed back brings it back in step.
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
    page = (await client.get("/v1/me/scores", params={"updated_since": future},
                             headers=world.patient_user.headers)).json()
    assert page["items"] == []
    fresh = body()
    await post_mine(client, world.patient_user, fresh)
    await delta_sync(client, world.patient_user, page["sync_watermark"], replica)
    assert fresh["id"] in replica


async def test_clinician_delta_sync_sees_the_same_as_the_patient(client, world):
    for _ in range(3):
        await post_mine(client, world.patient_user, body())
    retracted = body()
    await post_mine(client, world.patient_user, retracted)
    await client.delete(f"/v1/me/scores/{retracted['id']}", headers=world.patient_user.headers)
    staff = (await client.get(f"/v1/patients/{world.patient.id}/scores", params={"updated_since": FROM_SCRATCH},
                              headers=world.clinician.headers)).json()
    mine = (await client.get("/v1/me/scores", params={"updated_since": FROM_SCRATCH},
                             headers=world.patient_user.headers)).json()
    assert [s["id"] for s in staff["items"]] == [s["id"] for s in mine["items"]]
    assert len(staff["items"]) == 4 and staff["items"][-1]["deleted_at"] is not None


async def test_a_row_committed_late_behind_the_cursor_comes_with_the_next_sync(app, client, world):
    """A change stamped before a later page but committed after the first page's read is passed by the cursor;
    the watermark every page answers (the first page's) still brings it next time."""
    from sqlalchemy import update


    ids = []
    for minute in range(4):
        body = {"id": new_id(), "instrument": "suds", "items": [minute], "recorded_at": "2026-11-20T08:30:00+01:00"}
        ids.append((await client.post("/v1/me/scores", json=body, headers=world.patient_user.headers)).json()["id"])
    first = (await client.get("/v1/me/scores", params={"updated_since": FROM_SCRATCH, "limit": 2},
                              headers=world.patient_user.headers)).json()
    # Simulate a transaction that stamped its change before this sync started and committed only now: the change
    # sorts before the cursor of the second page.
    late = dt.datetime.fromisoformat(first["items"][0]["updated_at"]) - dt.timedelta(seconds=1)
    async with app.state.sessions() as session:
        await session.exec(update(Score).where(Score.id == uuid.UUID(ids[3])).values(updated_at=late, note="late"))
        await session.commit()
    second = (await client.get("/v1/me/scores", params={"updated_since": FROM_SCRATCH, "limit": 2,
                                                        "cursor": first["next_cursor"]},
                               headers=world.patient_user.headers)).json()
    assert second["sync_watermark"] == first["sync_watermark"]
    assert ids[3] not in [s["id"] for s in first["items"] + second["items"]]
    following = (await client.get("/v1/me/scores", params={"updated_since": second["sync_watermark"]},
                                  headers=world.patient_user.headers)).json()
    assert ids[3] in [s["id"] for s in following["items"]]


async def test_a_tampered_cursor_watermark_is_422(client, world):
    import base64
    import json

    forged = base64.urlsafe_b64encode(json.dumps({"after": ["2026-01-01T00:00:00+00:00", new_id()],
                                                  "carry": "not a time"}).encode()).decode()
    response = await client.get("/v1/me/scores", params={"updated_since": FROM_SCRATCH, "cursor": forged},
                                headers=world.patient_user.headers)
    assert response.status_code == 422
