"""Test harness: the API through HTTP (httpx → ASGI app) on a real database, clean for every test.

DATABASE_URL picks the backend. Unset: SQLite, a migrated template file copied per test. PostgreSQL: one database per
xdist worker (named after DATABASE_URL's database), migrated once and truncated before every test.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from api import migrate
from api.app import create_app, release
from api.settings import Settings

TEST_SECRET = "test-secret-key-of-more-than-32-bytes-0123456789"
# The suite configures the app itself: the .env that `make run` writes in the checkout (development mode, a generated
# SECRET_KEY) must not change what `make test` run from the same checkout tests.
Settings.model_config["env_file"] = None
BASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = BASE_URL.startswith("postgres")


def pytest_collection_modifyitems(config, items):
    if ON_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL=postgresql://…)")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw")


async def _recreate_pg_database(url: str) -> None:
    parsed = make_url(url)
    admin = await asyncpg.connect(
        host=parsed.host or "127.0.0.1", port=parsed.port or 5432, user=parsed.username or "root",
        password=parsed.password, database="postgres",
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()


async def _drop_pg_database(url: str) -> None:
    parsed = make_url(url)
    admin = await asyncpg.connect(host=parsed.host or "127.0.0.1", port=parsed.port or 5432,
                                  user=parsed.username or "root", password=parsed.password, database="postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await admin.close()


def fresh_database_url(tmp_path: Path, suffix: str) -> str:
    """An empty database of the backend under test (for migration tests)."""
    if ON_POSTGRES:
        url = make_url(BASE_URL)
        url = url.set(database=f"{url.database}_{_worker()}_{suffix}").render_as_string(hide_password=False)
        asyncio.run(_recreate_pg_database(url))
        return url
    return f"sqlite:///{tmp_path / (suffix + '.db')}"


def drop_database(url: str) -> None:
    if url.startswith("postgres"):
        asyncio.run(_drop_pg_database(url))


@pytest.fixture(scope="session")
def template_database(tmp_path_factory) -> str:
    """Migrated once per worker: an SQLite template file, or the worker's PostgreSQL database."""
    if ON_POSTGRES:
        url = make_url(BASE_URL)
        url = url.set(database=f"{url.database}_{_worker()}").render_as_string(hide_password=False)
        asyncio.run(_recreate_pg_database(url))
        migrate.upgrade(url)
        yield url
        asyncio.run(_drop_pg_database(url))
    else:
        path = tmp_path_factory.mktemp("db") / "template.db"
        migrate.upgrade(f"sqlite:///{path}")
        yield str(path)


@pytest.fixture
def database_url(template_database: str, tmp_path: Path) -> str:
    if ON_POSTGRES:
        return template_database
    target = tmp_path / "test.db"
    shutil.copyfile(template_database, target)
    return f"sqlite:///{target}"


def make_settings(database_url: str, **overrides) -> Settings:
    # Rate limits are tested on their own (tests/test_rate_limits.py); elsewhere they would only make tests flaky.
    values = dict(environment="test", database_url=database_url, secret_key=TEST_SECRET, log_level="WARNING",
                  rate_limit="1000000/minute")
    values.update(overrides)
    return Settings(**values)


@functools.cache
def openapi_document() -> dict:
    """The app's OpenAPI document, built once per test process (callers must not change it)."""
    return create_app(make_settings("sqlite:///:memory:")).openapi()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


async def offline_resolver(host: str, port: int) -> list[str]:
    """Webhook target names resolve to nothing in tests unless a test gives its own resolver: no DNS queries leave
    the machine (api/webhooks/targets.py)."""
    raise socket.gaierror(socket.EAI_NONAME, f"{host}: no DNS in tests")


@pytest.fixture
async def app(settings: Settings):
    application = create_app(settings)
    application.state.webhook_resolver = offline_resolver
    if ON_POSTGRES:
        async with application.state.engine.begin() as connection:
            tables = (await connection.execute(text(
                "SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            ))).scalar_one()
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield application
    # As the lifespan's end does: a revocation reread left in flight would hold its connection's locks after this
    # test's event loop had gone, and the next test's TRUNCATE would wait for it forever.
    await release(application)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://calmtrack.test") as http:
        yield http


@pytest.fixture
async def world(app):
    from tests.factories import build_world

    return await build_world(app)


def new_id() -> str:
    return str(uuid.uuid4())
