"""Start-up configuration and the `calmtrack` console script."""

import pytest
from pydantic import ValidationError

from api.cli import main
from api.db import async_url
from api.settings import DEVELOPMENT_SECRET_KEY, Settings


@pytest.mark.parametrize("environment", ["production", "test"])
@pytest.mark.parametrize("key", [DEVELOPMENT_SECRET_KEY, "short-key", "x" * 31])
def test_weak_signing_key_is_refused_outside_development(environment, key):
    with pytest.raises(ValidationError, match="secret_key"):
        Settings(environment=environment, secret_key=key)


def test_development_accepts_the_default_key():
    assert Settings(environment="development").secret_key == DEVELOPMENT_SECRET_KEY


def test_cors_origins_from_a_comma_separated_variable(monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings(environment="development").cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize(
    ("given", "driver"),
    [("sqlite:///./x.db", "sqlite+aiosqlite"), ("postgresql://u@h:5432/d", "postgresql+asyncpg"),
     ("postgres://u@h/d", "postgresql+asyncpg"), ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg")],
)
def test_plain_database_urls_get_async_drivers(given, driver):
    assert async_url(given).drivername == driver


def test_unsupported_database_is_refused():
    with pytest.raises(ValueError, match="unsupported"):
        async_url("mysql://u@h/d")


async def test_create_admin_bootstraps_an_organization_and_a_working_login(client, database_url, monkeypatch, capsys):
    import asyncio

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ENVIRONMENT", "development")
    args = ["create-admin", "--organization", "Bootstrap Clinic", "--email", "Boss@Example.com",
            "--password", "a long enough secret"]
    from api.settings import get_settings

    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(main, args) == 0
        assert "created admin boss@example.com" in capsys.readouterr().out
        # The same email again is refused with a message, not a traceback.
        assert await asyncio.to_thread(main, args) == 1
        assert await asyncio.to_thread(main, [*args[:-1], "short"]) == 2
    finally:
        get_settings.cache_clear()
    login = await client.post("/v1/auth/login", json={"email": "boss@example.com", "password": "a long enough secret"})
    assert login.status_code == 200
    me = (await client.get("/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})).json()
    assert me["role"] == "admin"
