"""`calmtrack worker` delivering webhooks: outbox events to a real receiver on 127.0.0.1 that verifies every
delivery with the standardwebhooks package; retries with back-off (time driven by the job's `now`, never slept),
the failing state, workers killed mid-delivery and workers running at once, rolled-back changes, and the SSRF check
at delivery time (resolved addresses, DNS rebinding, redirects).

The receiver is http on loopback, so these tests run in development mode with WEBHOOK_ALLOW_PRIVATE_TARGETS on; the
tests of refusals turn both off and never connect anywhere (a mock transport stands for the network).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from api import outbox
from api.db import create_engine, session_factory
from api.webhooks import delivery
from api.webhooks.delivery import LEASE, MAX_ATTEMPTS, RETRY_AT, claim, deliver_webhooks
from api.worker import run_once
from models import DeliveryStatus, OutboxEvent, WebhookDelivery, WebhookStatus
from models.base import utcnow
from tests.conftest import TEST_SECRET
from tests.plan_helpers import new_plan, patch_plan, rows
from tests.session_helpers import new_session, sign
from tests.webhook_helpers import (
    Receiver,
    attempts,
    body_of,
    deliveries,
    endpoint,
    new_score,
    resolver_of,
    subscribe,
)

PUBLIC = "93.184.215.14"  # a globally routable address: only ever "reached" through a mock transport here


@pytest.fixture
def settings_private(app):
    """The receivers live on http://127.0.0.1: development mode (http) and private targets allowed, for
    registration and delivery alike."""
    app.state.settings = app.state.settings.model_copy(
        update={"environment": "development", "webhook_allow_private_targets": True})
    return app.state.settings


async def run(app, settings, **kwargs) -> int:
    return await deliver_webhooks(app.state.sessions, settings, **kwargs)


async def until(condition, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


# --- delivery and signature ----------------------------------------------------------------------------------------

async def test_a_new_score_is_delivered_signed_with_ids_only(client, world, app, settings_private):
    with Receiver() as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        score_id = await new_score(client, world)
        assert await run(app, settings_private) == 1
        [received] = receiver.received
        payload = received.verified(hook["secret"])
    [event] = await rows(app, OutboxEvent, OutboxEvent.type == "score.created")
    assert received.id == str(event.id)
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-signature"].startswith("v1,")
    assert abs(int(received.headers["webhook-timestamp"]) - utcnow().timestamp()) < 60
    assert payload == {"type": "score.created", "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
                       "data": {"score_id": score_id, "patient_id": str(world.patient.id)}}
    assert event.dispatched_at is not None
    [row] = await deliveries(app, hook["id"])
    assert (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.succeeded, 1, 204)
    assert (await endpoint(app, hook["id"])).last_success_at is not None
    assert await run(app, settings_private) == 0  # nothing twice


async def test_every_event_type_reaches_the_subscriptions_that_want_it(client, world, app, settings_private):
    """Every producer's event: a plan created and edited, a session signed, a score with PHQ-9 item 9 answered
    (its alert)."""
    with Receiver() as everything, Receiver() as plans_only:
        all_hook = await subscribe(client, world.admin, everything.url,
                                   ["score.created", "alert.raised", "session.signed", "plan.updated"])
        plan_hook = await subscribe(client, world.admin, plans_only.url, ["plan.updated"])
        plan = await new_plan(client, world)
        assert (await patch_plan(client, world.clinician, plan["id"], {"goals": []}, plan["etag"])).status_code == 200
        draft = await new_session(client, world, plan=None)  # under an active plan (another plan.updated)
        assert (await sign(client, world.clinician, draft["id"])).status_code == 200
        score_id = await new_score(client, world, items=[3, 3, 3, 3, 3, 3, 3, 3, 1], instrument="phq9")
        await run(app, settings_private)
        received = everything.payloads(all_hook["secret"])
        plan_types = [p["type"] for p in plans_only.payloads(plan_hook["secret"])]
    by_type = {}
    for payload in received:
        by_type.setdefault(payload["type"], []).append(payload["data"])
    assert sorted((kind, len(data)) for kind, data in by_type.items()) == [
        ("alert.raised", 1), ("plan.updated", 4), ("score.created", 1), ("session.signed", 1)]
    assert by_type["session.signed"] == [{"session_id": draft["id"], "patient_id": str(world.patient.id)}]
    assert by_type["score.created"] == [{"score_id": score_id, "patient_id": str(world.patient.id)}]
    assert set(by_type["alert.raised"][0]) == {"alert_id", "patient_id"}
    assert {"plan_id", "patient_id", "revision", "status"} == set(by_type["plan.updated"][0])
    assert plan_types == ["plan.updated"] * 4


async def test_other_organizations_earlier_events_and_disabled_webhooks_get_nothing(
    client, world, app, settings_private
):
    await new_score(client, world)  # before any subscription
    with Receiver() as receiver_a, Receiver() as receiver_b:
        await subscribe(client, world.admin_b, receiver_b.url)
        hook = await subscribe(client, world.admin, receiver_a.url)
        await new_score(client, world)
        await run(app, settings_private)
        assert len(receiver_a.received) == 1 and receiver_b.received == []
        paused = await client.patch(f"/v1/webhooks/{hook['id']}", json={"status": "disabled"},
                                    headers=world.admin.headers)
        assert paused.status_code == 200
        await new_score(client, world)
        await run(app, settings_private)
        assert len(receiver_a.received) == 1


async def test_the_test_endpoint_queues_a_signed_ping(client, world, app, settings_private):
    with Receiver() as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        queued = await client.post(f"/v1/webhooks/{hook['id']}/test", headers=world.admin.headers)
        assert queued.status_code == 202, queued.text
        assert queued.json()["status"] == "pending" and queued.json()["event_type"] == "webhook.test"
        assert await run(app, settings_private) == 1
        [payload] = receiver.payloads(hook["secret"])
        assert receiver.received[0].id == queued.json()["event_id"]
    assert payload["type"] == "webhook.test" and payload["data"] == {"webhook_id": hook["id"]}
    listed = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=world.admin.headers)).json()
    [item] = listed["items"]
    assert (item["id"], item["status"], item["attempt_count"]) == (queued.json()["delivery_id"], "succeeded", 1)
    [attempt] = item["attempts"]
    assert (attempt["attempt"], attempt["status_code"], attempt["succeeded"], attempt["error"]) == (1, 204, True, None)
    assert attempt["duration_ms"] >= 0


async def test_run_once_includes_the_delivery_job(client, world, app, settings_private):
    with Receiver() as receiver:
        await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        assert await run_once(app.state.sessions, settings_private) == {"overdue_sweep": 0, "webhook_delivery": 1}
        assert len(receiver.received) == 1


# --- retries, back-off, failing --------------------------------------------------------------------------------------

async def test_a_receiver_failing_three_times_then_succeeding_gets_the_event(client, world, app, settings_private):
    with Receiver([500, 503, 502]) as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        start = utcnow()
        assert await run(app, settings_private, now=start) == 1
        assert await run(app, settings_private, now=start + dt.timedelta(seconds=4)) == 0  # first retry ~5 s later
        times = [start]
        for _ in range(3):
            [row] = await deliveries(app, hook["id"])
            times.append(row.next_attempt_at)
            assert await run(app, settings_private, now=row.next_attempt_at) == 1
        payloads = receiver.payloads(hook["secret"])  # every one verifies
        ids = {request.id for request in receiver.received}
    assert len(payloads) == 4 and len(ids) == 1 and len({p["timestamp"] for p in payloads}) == 1
    waits = [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:], strict=False)]
    gaps = [5, 5 * 60 - 5, 30 * 60 - 5 * 60]
    assert all(gap * 0.89 <= wait <= gap * 1.11 for gap, wait in zip(gaps, waits, strict=True)), waits
    [row] = await deliveries(app, hook["id"])
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == ("succeeded", 4, 204, None)
    history = await attempts(app, row.id)
    assert [(a.attempt, a.status_code, a.succeeded) for a in history] == [
        (1, 500, False), (2, 503, False), (3, 502, False), (4, 204, True)]
    assert history[0].error == "HTTP 500"
    listed = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=world.admin.headers)).json()
    assert [a["status_code"] for a in listed["items"][0]["attempts"]] == [500, 503, 502, 204]
    assert listed["items"][0]["event_id"] == ids.pop()


async def test_retries_for_a_day_then_the_webhook_is_failing_and_a_success_resets_it(
    client, world, app, settings_private
):
    with Receiver(then=500) as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        times = [utcnow()]
        assert await run(app, settings_private, now=times[0]) == 1
        for _ in range(MAX_ATTEMPTS):
            [row] = await deliveries(app, hook["id"])
            if row.status != DeliveryStatus.pending:
                break
            times.append(row.next_attempt_at)
            assert await run(app, settings_private, now=row.next_attempt_at) == 1
        assert len(receiver.received) == MAX_ATTEMPTS == 10
        [row] = await deliveries(app, hook["id"])
        assert (row.status, row.attempts) == ("failed", 10)
        # About a day from the first attempt to the last.
        span = times[-1] - times[0]
        assert RETRY_AT[-1] * 0.9 <= span <= RETRY_AT[-1] * 1.1, span
        shown = (await client.get(f"/v1/webhooks/{hook['id']}", headers=world.admin.headers)).json()
        assert shown["status"] == "failing" and shown["last_error"] == "HTTP 500"
        assert shown["failing_since"] is not None and shown["last_failure_at"] is not None

        # Failing: nothing more is sent, new events included.
        await new_score(client, world)
        assert await run(app, settings_private, now=times[-1] + dt.timedelta(days=2)) == 0
        assert len(receiver.received) == 10

        # The admin fixes the receiver and sends a test: its success puts the webhook back to active.
        receiver.then = 204
        assert (await client.post(f"/v1/webhooks/{hook['id']}/test", headers=world.admin.headers)).status_code == 202
        assert await run(app, settings_private) == 1
        shown = (await client.get(f"/v1/webhooks/{hook['id']}", headers=world.admin.headers)).json()
        assert (shown["status"], shown["failing_since"]) == ("active", None)
        await new_score(client, world)
        assert await run(app, settings_private) == 1
        assert [body_of(r)["type"] for r in receiver.received[-2:]] == ["webhook.test", "score.created"]


async def test_a_failed_test_ping_is_tried_once_and_leaves_an_active_webhook_active(
    client, world, app, settings_private
):
    with Receiver(then=500) as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await client.post(f"/v1/webhooks/{hook['id']}/test", headers=world.admin.headers)
        assert await run(app, settings_private) == 1
        assert await run(app, settings_private, now=utcnow() + dt.timedelta(days=2)) == 0
    [row] = await deliveries(app, hook["id"])
    assert (row.status, row.attempts) == ("failed", 1)
    shown = await endpoint(app, hook["id"])
    assert (shown.status, shown.last_error) == (WebhookStatus.active, "HTTP 500")


async def test_patching_a_failing_webhook_active_resumes_its_held_deliveries(client, world, app, settings_private):
    with Receiver(then=500) as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        assert await run(app, settings_private) == 1
        # A second event in flight while the first exhausts its retries.
        await new_score(client, world)
        now = utcnow()
        while (first := (await deliveries(app, hook["id"]))[0]).status == DeliveryStatus.pending:
            now = max(now, first.next_attempt_at)
            await run(app, settings_private, now=now)
        assert (await endpoint(app, hook["id"])).status == WebhookStatus.failing
        second = (await deliveries(app, hook["id"]))[1]
        assert second.status == DeliveryStatus.pending
        # Held while failing, whatever the time.
        assert await run(app, settings_private, now=now + dt.timedelta(days=3)) == 0
        receiver.then = 200
        resumed = await client.patch(f"/v1/webhooks/{hook['id']}", json={"status": "active"},
                                     headers=world.admin.headers)
        assert resumed.json()["status"] == "active" and resumed.json()["failing_since"] is None
        assert await run(app, settings_private, now=now + dt.timedelta(days=3)) == 1
    assert (await deliveries(app, hook["id"]))[1].status == DeliveryStatus.succeeded


async def test_410_gone_disables_the_webhook_at_once(client, world, app, settings_private):
    with Receiver([410]) as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        assert await run(app, settings_private) == 1
        await new_score(client, world)
        assert await run(app, settings_private, now=utcnow() + dt.timedelta(days=2)) == 0
        assert len(receiver.received) == 1
    [row] = await deliveries(app, hook["id"])
    assert (row.status, row.attempts, row.last_status_code) == ("failed", 1, 410)
    shown = await endpoint(app, hook["id"])
    assert shown.status == WebhookStatus.disabled and "410" in shown.last_error


async def test_retry_after_is_honoured(client, world, app, settings_private):
    with Receiver([429], headers={"Retry-After": "120"}) as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        start = utcnow()
        await run(app, settings_private, now=start)
        [row] = await deliveries(app, hook["id"])
        assert row.next_attempt_at >= start + dt.timedelta(seconds=120)
        assert await run(app, settings_private, now=start + dt.timedelta(seconds=60)) == 0
        assert await run(app, settings_private, now=row.next_attempt_at) == 1
        assert len(receiver.received) == 2


async def test_a_timeout_and_a_closed_port_are_failures_that_are_retried(client, world, app, settings_private,
                                                                        monkeypatch):
    with Receiver() as receiver:
        closed = f"http://127.0.0.1:{receiver.port}/hooks"
    hook = await subscribe(client, world.admin, closed)  # nothing listens there any more
    await new_score(client, world)
    assert await run(app, settings_private) == 1
    [row] = await deliveries(app, hook["id"])
    assert row.status == "pending" and row.last_status_code is None and "ConnectError" in row.last_error

    monkeypatch.setattr(delivery, "ATTEMPT_DEADLINE_SECONDS", 0.3)
    with Receiver() as slow:
        slow.hold()
        await client.patch(f"/v1/webhooks/{hook['id']}", json={"url": slow.url}, headers=world.admin.headers)
        assert await run(app, settings_private, now=row.next_attempt_at) == 1
        slow.release()
    [row] = await deliveries(app, hook["id"])
    assert (row.status, row.attempts, row.last_error) == ("pending", 2, "timed out")


def test_the_schedule_spans_a_day_with_jitter_of_at_most_a_tenth():
    class Fixed(random.Random):
        def __init__(self, factor: float) -> None:
            super().__init__(0)
            self.factor = factor

        def uniform(self, a: float, b: float) -> float:
            assert (a, b) == (0.9, 1.1)
            return self.factor

    for factor, expected in ((1.0, RETRY_AT[-1]), (0.9, RETRY_AT[-1] * 0.9), (1.1, RETRY_AT[-1] * 1.1)):
        waits = [delivery.retry_delay(attempt, Fixed(factor)) for attempt in range(1, MAX_ATTEMPTS)]
        assert sum(waits, dt.timedelta()) == expected
    assert delivery.retry_delay(1, random.Random()) <= dt.timedelta(seconds=5.5)


def test_retry_after_reads_seconds_and_http_dates_within_a_day():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert delivery._retry_after("120", now) == dt.timedelta(seconds=120)
    assert delivery._retry_after("Thu, 01 Jan 2026 00:10:00 GMT", now) == dt.timedelta(minutes=10)
    assert delivery._retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now) == dt.timedelta()
    assert delivery._retry_after("99999999999999", now) == dt.timedelta(hours=24)
    assert delivery._retry_after("soon", now) is None and delivery._retry_after(None, now) is None


# --- at least once: killed workers, concurrent workers, rolled-back changes ----------------------------------------

async def test_a_worker_killed_mid_delivery_loses_nothing(client, world, app, settings_private):
    with Receiver() as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        receiver.hold()  # the receiver has the request; the worker dies before it hears back
        worker = asyncio.create_task(run(app, settings_private))
        await until(lambda: len(receiver.received) == 1)
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
        receiver.release()
        [row] = await deliveries(app, hook["id"])
        assert row.status == "pending" and row.lease_until is not None
        # Until the lease runs out nobody takes it; then the next worker sends it again, with the same webhook-id.
        assert await run(app, settings_private) == 0
        assert await run(app, settings_private, now=row.lease_until + dt.timedelta(seconds=1)) == 1
        ids = [request.id for request in receiver.received]
        receiver.payloads(hook["secret"])
    assert len(ids) == 2 and ids[0] == ids[1]
    [row] = await deliveries(app, hook["id"])
    assert (row.status, row.attempts) == ("succeeded", 2)
    assert [a.attempt for a in await attempts(app, row.id)] == [2]  # the killed attempt left no record


async def test_a_claim_whose_worker_died_is_taken_again_after_its_lease(client, world, app, settings_private):
    with Receiver() as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        await delivery.fan_out(app.state.sessions, utcnow)
        [claimed] = await claim(app.state.sessions, utcnow)  # a worker claims it, and is killed right there
        assert await claim(app.state.sessions, utcnow) == []  # nobody else may take it meanwhile
        assert await run(app, settings_private, now=utcnow() + LEASE - dt.timedelta(seconds=5)) == 0
        assert await run(app, settings_private, now=utcnow() + LEASE + dt.timedelta(seconds=1)) == 1
        [request] = receiver.received
        request.verified(hook["secret"])
    assert request.id == str(claimed.event_id)
    # The dead worker's late answer cannot undo the new holder's success.
    late = delivery.Outcome(started_at=utcnow(), duration_ms=1, error="timed out")
    await delivery.record(app.state.sessions, claimed, late, utcnow, random.Random(0))
    [row] = await deliveries(app, hook["id"])
    assert row.status == "succeeded"


async def test_a_delivery_whose_last_attempts_worker_died_fails_instead_of_going_on(
    client, world, app, settings_private
):
    with Receiver() as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        await delivery.fan_out(app.state.sessions, utcnow)
        async with app.state.sessions() as session:
            await session.exec(update(WebhookDelivery).values(attempts=MAX_ATTEMPTS - 1))
            await session.commit()
        [claimed] = await claim(app.state.sessions, utcnow)  # the tenth attempt, and its worker dies
        assert claimed.attempt == MAX_ATTEMPTS
        assert await run(app, settings_private, now=utcnow() + LEASE + dt.timedelta(seconds=1)) == 0
        assert receiver.received == []
    [row] = await deliveries(app, hook["id"])
    assert (row.status, row.attempts, row.last_error) == ("failed", MAX_ATTEMPTS, delivery.UNANSWERED)
    shown = await endpoint(app, hook["id"])
    assert (shown.status, shown.last_error) == (WebhookStatus.failing, delivery.UNANSWERED)


async def test_an_event_is_never_fanned_out_twice(client, world, app, settings_private):
    with Receiver() as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        results = await asyncio.gather(*(delivery.fan_out(app.state.sessions, utcnow) for _ in range(4)))
        assert sum(created for _, created in results) == 1
    assert len(await deliveries(app, hook["id"])) == 1


async def test_two_workers_at_once_deliver_each_event_once(client, world, app, settings_private):
    with Receiver() as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        for _ in range(25):
            await new_score(client, world)
        counts = await asyncio.gather(run(app, settings_private), run(app, settings_private))
        ids = [request.id for request in receiver.received]
        receiver.payloads(hook["secret"])
    assert sum(counts) == 25 and len(ids) == 25 and len(set(ids)) == 25
    assert all(row.attempts == 1 and row.status == "succeeded" for row in await deliveries(app, hook["id"]))


@pytest.mark.postgres_only
async def test_workers_with_their_own_connections_deliver_each_event_once(
    client, world, app, settings_private, database_url
):
    """Real concurrency: each worker on its own engine (its own connections), claiming with SKIP LOCKED."""
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        with Receiver() as receiver:
            hook = await subscribe(client, world.admin, receiver.url)
            for _ in range(40):
                await new_score(client, world)
            counts = await asyncio.gather(*(deliver_webhooks(session_factory(engine), settings_private)
                                            for engine in engines))
            ids = [request.id for request in receiver.received]
            receiver.payloads(hook["secret"])
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(counts) == 40 and len(ids) == 40 and len(set(ids)) == 40


async def test_two_calmtrack_worker_processes_deliver_each_event_once(
    client, world, app, settings_private, database_url
):
    with Receiver() as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        for _ in range(15):
            await new_score(client, world)
        env = {**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "development", "SECRET_KEY": TEST_SECRET,
               "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true", "LOG_LEVEL": "WARNING"}
        calmtrack = str(Path(sys.executable).parent / "calmtrack")
        processes = [subprocess.Popen([calmtrack, "worker", "--once"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [await asyncio.to_thread(process.communicate, timeout=120) for process in processes]
        ids = [request.id for request in receiver.received]
        receiver.payloads(hook["secret"])
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert len(ids) == 15 and len(set(ids)) == 15
    assert sum(int(out.split("webhook_delivery: ")[1].split(",")[0]) for out, _ in outputs) == 15


async def test_the_event_of_a_rolled_back_change_is_never_delivered(client, world, app, settings_private,
                                                                    monkeypatch):
    from api.plans import service as plans

    with Receiver() as receiver:
        hook = await subscribe(client, world.admin, receiver.url, ["plan.updated"])
        plan = await new_plan(client, world)  # plan.updated (created)

        # The change fails after its event was added to its transaction: everything is rolled back.
        def broken(*args, **kwargs):
            raise RuntimeError("fails after the outbox row was added")

        monkeypatch.setattr(plans, "present", broken)
        failed = await patch_plan(client, world.clinician, plan["id"], {"goals": []}, plan["etag"])
        assert failed.status_code == 500
        monkeypatch.undo()

        # And straight through a session: an event enqueued, then rolled back.
        async with app.state.sessions() as session:
            outbox.enqueue(session, world.org_a.id, "plan.updated", {"plan_id": uuid.uuid4()})
            await session.flush()
            await session.rollback()

        await run(app, settings_private)
        await run(app, settings_private, now=utcnow() + dt.timedelta(days=2))
        payloads = receiver.payloads(hook["secret"])
    assert [(p["type"], p["data"]["revision"]) for p in payloads] == [("plan.updated", 1)]
    assert len(await rows(app, OutboxEvent, OutboxEvent.type == "plan.updated")) == 1


async def test_deleting_a_webhook_mid_delivery_is_harmless(client, world, app, settings_private):
    with Receiver() as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        receiver.hold()
        worker = asyncio.create_task(run(app, settings_private))
        await until(lambda: len(receiver.received) == 1)
        deleted = await client.delete(f"/v1/webhooks/{hook['id']}", headers=world.admin.headers)
        assert deleted.status_code == 204
        receiver.release()
        assert await worker == 1
    assert await deliveries(app, hook["id"]) == []


# --- SSRF at delivery time ----------------------------------------------------------------------------------------

class Network(httpx.AsyncBaseTransport):
    """Stands for the network under the SSRF check: records what would be sent, answers `status`."""

    def __init__(self, status: int = 204, headers: dict[str, str] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.status, self.headers = status, headers or {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, headers=self.headers)


async def test_a_name_rebound_to_a_private_address_is_refused_at_delivery(client, world, app, settings):
    answers = {"hooks.example.com": [PUBLIC]}
    app.state.webhook_resolver = resolver_of(answers)
    hook = await subscribe(client, world.admin, "https://hooks.example.com/in")
    await new_score(client, world)
    await delivery.fan_out(app.state.sessions, utcnow)
    network = Network()
    for private in ("10.0.0.1", "127.0.0.1", "169.254.169.254", "::1", "fd00::1"):
        answers["hooks.example.com"] = [PUBLIC, private]  # DNS changed after registration
        [row] = await deliveries(app, hook["id"])
        assert await run(app, settings, now=row.next_attempt_at, resolver=resolver_of(answers), network=network) == 1
        [row] = await deliveries(app, hook["id"])
        assert row.status == "pending" and row.last_status_code is None
        assert f"hooks.example.com resolves to {private}" in row.last_error, row.last_error
    assert network.requests == []  # nothing was ever sent


async def test_the_connection_goes_to_the_address_checked_with_the_name_as_host_and_sni(
    client, world, app, settings
):
    calls: list[str] = []
    app.state.webhook_resolver = resolver_of({"hooks.example.com": [PUBLIC]})
    hook = await subscribe(client, world.admin, "https://hooks.example.com:8443/in")
    await new_score(client, world)
    network = Network()
    assert await run(app, settings, resolver=resolver_of({"hooks.example.com": [PUBLIC]}, calls),
                     network=network) == 1
    [request] = network.requests
    assert str(request.url) == f"https://{PUBLIC}:8443/in"
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert calls == ["hooks.example.com"]  # resolved once, by the check; the connection reuses its answer
    [row] = await deliveries(app, hook["id"])
    assert row.status == "succeeded"


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(client, world, app, settings):
    app.state.webhook_resolver = resolver_of({"hooks.example.com": [PUBLIC]})
    hook = await subscribe(client, world.admin, "https://hooks.example.com/in")
    await new_score(client, world)
    network = Network(302, {"location": "http://169.254.169.254/latest/meta-data/"})
    assert await run(app, settings, resolver=resolver_of({"hooks.example.com": [PUBLIC]}), network=network) == 1
    assert [str(r.url) for r in network.requests] == [f"https://{PUBLIC}/in"]  # and nothing to the metadata service
    [row] = await deliveries(app, hook["id"])
    assert (row.status, row.last_status_code) == ("pending", 302)
    assert row.last_error == "HTTP 302: redirect not followed (Location: http://169.254.169.254/latest/meta-data/)"


async def test_a_redirect_to_a_local_receiver_is_not_followed(client, world, app, settings_private):
    with Receiver() as target, Receiver([307], headers={}) as redirecting:
        redirecting.answer_headers["location"] = target.url
        hook = await subscribe(client, world.admin, redirecting.url)
        await new_score(client, world)
        assert await run(app, settings_private) == 1
        assert len(redirecting.received) == 1 and target.received == []
    [row] = await deliveries(app, hook["id"])
    assert row.last_status_code == 307 and row.status == "pending"


async def test_a_target_made_private_in_the_database_is_refused_when_the_setting_is_off(
    client, world, app, settings, settings_private
):
    """A webhook registered while private targets (and http) were allowed is refused once they are not: the check
    at delivery does not trust the one at registration."""
    with Receiver() as receiver:
        hook = await subscribe(client, world.admin, receiver.url)
        await new_score(client, world)
        strict = settings_private.model_copy(update={"webhook_allow_private_targets": False})
        assert await run(app, strict) == 1
        [row] = await deliveries(app, hook["id"])
        assert "127.0.0.1, a loopback address, is not allowed" in row.last_error
        production = settings_private.model_copy(update={"environment": "production"})
        assert await run(app, production, now=row.next_attempt_at) == 1
        assert receiver.received == []
    [row] = await deliveries(app, hook["id"])
    assert row.last_error == "must use https (http is allowed only with ENVIRONMENT=development)"


@pytest.mark.postgres_only
async def test_claims_skip_rows_another_worker_is_claiming_on_postgresql(app):
    from sqlalchemy.dialects import postgresql

    statement = delivery._skip_locked(select(OutboxEvent.id), app.state.sessions, OutboxEvent)
    assert "FOR UPDATE OF outbox_event SKIP LOCKED" in str(statement.compile(dialect=postgresql.dialect()))
