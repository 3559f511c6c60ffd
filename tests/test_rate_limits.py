"""Per-caller rate limits: 429 with Retry-After past the limit, counted per caller, shared through Redis."""

import os
import threading
import time

import httpx
import pytest
from pydantic import ValidationError

from api.app import create_app, release
from api.ratelimit import SWEEP_SECONDS, InProcessStorage
from api.settings import Settings
from tests.conftest import make_settings

REDIS_URL = os.environ.get("TEST_REDIS_URL")


async def _client(app):
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://calmtrack.test")


async def test_over_the_limit_is_429_with_retry_after(database_url, world):
    app = create_app(make_settings(database_url, rate_limit="3/minute"))
    async with await _client(app) as client:
        statuses = [(await client.get("/v1/me", headers=world.clinician.headers)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await client.get("/v1/me", headers=world.clinician.headers)
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Counted per caller: another user is unaffected.
        assert (await client.get("/v1/me", headers=world.admin.headers)).status_code == 200
    await release(app)


async def test_requests_without_a_valid_token_are_not_counted_against_anyone(database_url, world):
    app = create_app(make_settings(database_url, rate_limit="2/minute"))
    async with await _client(app) as client:
        for _ in range(5):
            assert (await client.get("/v1/me", headers={"Authorization": "Bearer nope"})).status_code == 401
        assert (await client.get("/v1/me", headers=world.clinician.headers)).status_code == 200
    await release(app)


@pytest.mark.parametrize("limit", ["lots", "5/fortnight", ""])
def test_invalid_limits_are_refused_at_start(limit):
    with pytest.raises(ValidationError):
        Settings(environment="development", rate_limit=limit)


def test_unknown_storage_is_refused_at_start(database_url):
    with pytest.raises(ValueError, match="rate-limit storage"):
        create_app(make_settings(database_url, rate_limit_storage_url="memcached://localhost"))


@pytest.mark.skipif(REDIS_URL is None, reason="set TEST_REDIS_URL (as .ci/run does) to test shared limits")
async def test_two_processes_share_the_limit_through_redis(database_url, world):
    # Two app instances stand for two API processes (the world's users are new in every run, so are their keys).
    storage = REDIS_URL
    first = create_app(make_settings(database_url, rate_limit="3/minute", rate_limit_storage_url=storage))
    second = create_app(make_settings(database_url, rate_limit="3/minute", rate_limit_storage_url=storage))
    async with await _client(first) as a, await _client(second) as b:
        statuses = [(await client.get("/v1/me", headers=world.patient_user.headers)).status_code
                    for client in (a, b, a, b)]
    assert statuses == [200, 200, 200, 429]
    for app in (first, second):
        await release(app)


async def test_an_unreachable_store_lets_requests_through(database_url, world):
    """Rate limiting protects the service; it must not take it down when its store is away (logged instead)."""
    app = create_app(make_settings(database_url, rate_limit="3/minute",
                                   rate_limit_storage_url="redis://127.0.0.1:9/0"))
    async with await _client(app) as client:
        assert (await client.get("/v1/me", headers=world.clinician.headers)).status_code == 200
    await release(app)


def test_the_in_process_store_sweeps_ended_windows_without_a_thread():
    storage = InProcessStorage()
    threads = set(threading.enumerate())
    storage.incr("ended", expiry=0.05)
    time.sleep(0.06)
    storage.incr("current", expiry=60)
    assert "ended" in storage.expirations  # not swept yet: at most once per SWEEP_SECONDS
    assert storage.get("ended") == 0  # a count past its expiry reads as none, swept or not
    storage.swept_at -= SWEEP_SECONDS
    storage.incr("current", expiry=60)
    assert "ended" not in storage.expirations and "ended" not in storage.storage
    assert storage.get("current") == 2
    # The library's own store starts a timer thread here; this one never does.
    assert not storage.timer.is_alive() and set(threading.enumerate()) <= threads
