"""Configuration from the environment (pydantic-settings), validated once at start-up."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal, TypeVar

from limits import parse as parse_limit
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.exc import ArgumentError

from api.db import async_url

DEVELOPMENT_SECRET_KEY = "calmtrack-development-key-do-not-use-in-production"
MIN_SECRET_KEY_BYTES = 32


class ConfigurationError(Exception):
    """Settings that cannot be used, as one line naming each setting and what is wrong with it."""


class DatabaseSettings(BaseSettings):
    """The database alone, for commands that need nothing else (migrating needs no signing key)."""

    # Every `calmtrack` command reads `.env` in the working directory; the environment takes precedence over it.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./calmtrack.db"

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        try:
            async_url(value)
        except (ArgumentError, ValueError):
            # Never echo the URL: it may carry a password.
            raise ValueError("must be a URL like sqlite:///path/to/file.db or postgresql://user@host:5432/db") from None
        return value


class Settings(DatabaseSettings):
    environment: Literal["development", "test", "production"] = "production"
    # Connections per process; requests beyond it wait for one, first come first served (api/pool.py). More is not
    # faster: one process keeps only a few statements busy at a time, and every extra concurrent backend adds
    # contention on PostgreSQL's WAL and index pages (docs/operations.md). max_connections bounds processes × this.
    db_pool_size: int = Field(default=8, ge=1, le=200)
    secret_key: str = Field(default=DEVELOPMENT_SECRET_KEY, validate_default=True)

    jwt_issuer: str = "calmtrack"
    jwt_audience: str = "calmtrack-api"
    # RFC 8725 / the contract: access tokens live at most 15 minutes.
    access_token_minutes: int = Field(default=15, ge=1, le=15)
    refresh_token_days: int = Field(default=30, ge=1, le=90)
    # A rotated refresh token presented again this soon after its rotation answers another pair of its family
    # instead of revoking it: a lost answer retried, or two refreshes in flight (docs/auth.md). 0 turns it off.
    refresh_reuse_grace_seconds: int = Field(default=30, ge=0, le=300)
    enrollment_code_hours: int = Field(default=72, ge=1, le=72)
    # How stale a process's copy of the access-token revocations may get (api/security/revocation.py): a deactivated
    # user's or revoked API client's tokens are refused on every process within this. One small query per interval.
    revocation_poll_seconds: float = Field(default=0.5, gt=0, le=1)

    # Per-account login throttling: after `login_max_failures` failures the account (or unknown email) is locked for
    # `login_lockout_base_seconds`, doubling with every further failure, capped at `login_lockout_max_seconds`.
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_base_seconds: int = Field(default=30, ge=1)
    login_lockout_max_seconds: int = Field(default=900, ge=1)

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Requests per caller (user or API client), e.g. "600/minute" or "20/second"; over it: 429 with Retry-After.
    rate_limit: str = "600/minute"
    # memory:// counts within one process; redis://host:port/db shares the counts between all API processes.
    rate_limit_storage_url: str = "memory://"
    cors_origins: Annotated[list[str], NoDecode] = []
    docs_enabled: bool = True
    # FastAPI's OpenTelemetry tracing, metrics and logs, sent to the globally configured providers.
    telemetry_enabled: bool = False
    # True lets webhooks target loopback, private and link-local addresses (development and tests only).
    webhook_allow_private_targets: bool = False
    # How often `calmtrack worker` fans new outbox events out to webhook subscriptions and sends what is due.
    webhook_delivery_seconds: float = Field(default=1.0, gt=0, le=60)
    # How often `calmtrack worker` looks for assessments overdue by more than 3 days.
    overdue_sweep_seconds: int = Field(default=900, ge=1, le=86_400)
    log_level: str = "INFO"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("rate_limit")
    @classmethod
    def _parse_rate_limit(cls, value: str) -> str:
        parse_limit(value)  # raises ValueError with the library's message
        return value

    @field_validator("secret_key")
    @classmethod
    def _refuse_weak_key(cls, value: str, info: ValidationInfo) -> str:
        # Runs for an unset SECRET_KEY too (validate_default on the field): the built-in default is refused as well.
        if info.data.get("environment") == "development":
            return value
        if value == DEVELOPMENT_SECRET_KEY or len(value.encode()) < MIN_SECRET_KEY_BYTES:
            raise ValueError(f"must be set to a random value of at least {MIN_SECRET_KEY_BYTES} bytes outside "
                             "ENVIRONMENT=development")
        return value


_Loaded = TypeVar("_Loaded", bound=BaseSettings)


def load(settings_class: type[_Loaded]) -> _Loaded:
    """Settings from the environment and `.env`, or ConfigurationError naming every bad setting on one line."""
    try:
        return settings_class()
    except ValidationError as error:
        problems = [f"{'.'.join(str(part) for part in e['loc']).upper()}: {e['msg'].removeprefix('Value error, ')}"
                    for e in error.errors()]
        raise ConfigurationError("; ".join(problems)) from None


def database_url() -> str:
    return load(DatabaseSettings).database_url


@lru_cache
def get_settings() -> Settings:
    return load(Settings)
