"""The database dropping its connections or going away: 503 with Retry-After while it is gone, no failed request
because of a connection that died while idle, and service back by itself (issue 12)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading

import asyncpg
import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from api.app import create_app, release
from api.context import request_id_var
from api.db import database_unavailable
from api.errors import DatabaseUnavailable
from api.settings import Settings
from tests.conftest import ON_POSTGRES, make_settings, new_id
from tests.test_scores import body


async def _admin_connection(database_url: str) -> asyncpg.Connection:
    url = make_url(database_url)
    return await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database="postgres")


async def _terminate_every_backend(admin: asyncpg.Connection, database: str) -> None:
    """Like a restart or failover: every connection of the database ends; returns once they are all gone."""
    query = "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
    await admin.execute(f"SELECT pg_terminate_backend(pid) FROM ({query}) AS backends", database)
    for _ in range(3000):
        if not await admin.fetch(query, database):
            # A backend leaves pg_stat_activity a moment before its process exits and closes the socket: the
            # connections are dead "between two requests" only once that has happened too.
            await asyncio.sleep(0.2)
            return
        await asyncio.sleep(0.01)
    raise AssertionError("backends still alive after 30 s")


async def _mixed_requests(client, world, count: int) -> list[int]:
    """Reads through the ORM session and creates through the one-statement fast path, some concurrently so that
    several pooled connections are in use."""
    statuses = []
    for start in range(0, count, 10):
        batch = [
            client.post("/v1/me/scores", json=body(), headers=world.patient_user.headers) if i % 2 == 0
            else client.get("/v1/me/scores", headers=world.patient_user.headers)
            for i in range(start, min(start + 10, count))
        ]
        statuses += [response.status_code for response in await asyncio.gather(*batch)]
    return statuses


class _Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[logging.LogRecord, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record, request_id_var.get()))


@contextlib.contextmanager
def _captured_errors():
    logger, handler = logging.getLogger("calmtrack.errors"), _Captured()
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


@pytest.mark.postgres_only
async def test_connections_terminated_while_idle_fail_no_request(client, world, settings: Settings):
    assert (await _mixed_requests(client, world, 20)) == [201, 200] * 10  # the pool holds several connections
    admin = await _admin_connection(settings.database_url)
    try:
        await _terminate_every_backend(admin, make_url(settings.database_url).database)
    finally:
        await admin.close()
    statuses = await _mixed_requests(client, world, 50)
    assert statuses == [201, 200] * 25, statuses


@pytest.mark.postgres_only
async def test_database_refusing_connections_is_503_until_it_is_back(client, world, settings: Settings):
    database = make_url(settings.database_url).database
    assert (await _mixed_requests(client, world, 10)) == [201, 200] * 5
    admin = await _admin_connection(settings.database_url)
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await _terminate_every_backend(admin, database)
        with _captured_errors() as logged:
            answers = [
                await client.get("/v1/me/scores", headers=world.patient_user.headers),
                await client.post("/v1/me/scores", json=body(), headers=world.patient_user.headers),  # fast path
                await client.get(f"/v1/patients/{world.patient.id}", headers=world.clinician.headers),
                await client.post("/v1/auth/login", json={"email": "nobody@example.com", "password": "x" * 12}),
            ]
            for response in answers:
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert int(response.headers["retry-after"]) >= 1
                assert response.json()["type"].endswith("database-unavailable")
            # Once per request, with its request id, and no stack trace.
            assert [request_id for _, request_id in logged] == [r.headers["x-request-id"] for r in answers]
            assert all(record.exc_info is None and "Traceback" not in record.getMessage() for record, _ in logged)

            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert int(ready.headers["retry-after"]) >= 1
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert (await client.get("/v1/me/scores", headers=world.patient_user.headers)).status_code == 200
    assert (await client.post("/v1/me/scores", json=body(), headers=world.patient_user.headers)).status_code == 201
    assert (await client.get("/readyz")).status_code == 200


@pytest.mark.postgres_only
async def test_no_connection_free_within_the_pool_timeout_is_503(app, client, world):
    engine = app.state.engine
    engine.pool._timeout = 0.2  # SQLAlchemy's 30 s, shortened for the test
    held = [await engine.raw_connection() for _ in range(engine.pool.size())]
    try:
        with _captured_errors() as logged:
            answers = [
                await client.post("/v1/me/scores", json=body(), headers=world.patient_user.headers),  # fast path
                await client.get("/v1/me/scores", headers=world.patient_user.headers),
                await client.get(f"/v1/patients/{world.patient.id}/chart?instrument=gad7",
                                 headers=world.clinician.headers),
            ]
        for response in answers:
            assert response.status_code == 503, response.text
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["type"].endswith("database-unavailable")
        assert [request_id for _, request_id in logged] == [r.headers["x-request-id"] for r in answers]
    finally:
        for connection in held:
            connection.close()
    assert (await client.post("/v1/me/scores", json=body(), headers=world.patient_user.headers)).status_code == 201
    assert engine.pool.checkedout() == 0


class _Closed(Exception):
    """An error raised while handling another, as a driver's wrapper is."""


@pytest.mark.parametrize(("error", "unavailable"), [
    (DatabaseUnavailable(), True),
    (sa_exc.TimeoutError("QueuePool limit of size 8 overflow 0 reached"), True),
    (ConnectionResetError(), True),
    (asyncpg.ConnectionDoesNotExistError(), True),
    (asyncpg.AdminShutdownError(), True),
    (asyncpg.TooManyConnectionsError(), True),
    (sa_exc.OperationalError("SELECT 1", {}, asyncpg.CannotConnectNowError()), True),
    (sqlite3.OperationalError("database is locked"), False),  # without its code: not recognisable as busy
    (sa_exc.IntegrityError("INSERT", {}, asyncpg.UniqueViolationError()), False),
    (asyncpg.DataError(), False),
    (ValueError(), False),
])
def test_which_errors_mean_the_database_is_unavailable(error, unavailable):
    assert database_unavailable(error) is unavailable
    try:
        try:
            raise error
        except BaseException as cause:
            raise _Closed() from cause
    except _Closed as wrapped:
        assert database_unavailable(wrapped) is unavailable


def test_a_busy_sqlite_database_is_unavailable():
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert database_unavailable(sa_exc.OperationalError("SELECT 1", {}, busy))


@pytest.fixture
def unreachable_settings(tmp_path) -> Settings:
    """A database that cannot be opened: a port nobody listens on, or an SQLite file in a missing directory."""
    database_url = ("postgresql://root@127.0.0.1:9/calmtrack" if ON_POSTGRES
                    else f"sqlite:///{tmp_path / 'missing' / 'calmtrack.db'}")
    return make_settings(database_url)


async def test_unreachable_database_is_503_with_retry_after(unreachable_settings):
    app = create_app(unreachable_settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://calmtrack.test") as http:
        login = await http.post("/v1/auth/login", json={"email": "someone@example.com", "password": new_id()})
        ready = await http.get("/readyz")
    await release(app)
    # aiosqlite's thread for a connection that failed to open reports its end to the event loop a moment after the
    # answer: let it, before the test's loop closes under it.
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            await asyncio.to_thread(thread.join, 5)
    for response in (login, ready):
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert int(response.headers["retry-after"]) >= 1
    assert login.json()["type"].endswith("database-unavailable")
