"""Configuration from the environment (pydantic-settings), validated once at start-up."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated, Literal

from limits import parse as parse_limit
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEVELOPMENT_SECRET_KEY = "calmtrack-development-key-do-not-use-in-production"
MIN_SECRET_KEY_BYTES = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "production"
    database_url: str = "sqlite:///./calmtrack.db"
    # Connections per process; requests beyond it wait for one. PostgreSQL's max_connections bounds processes × this.
    db_pool_size: int = Field(default=20, ge=1, le=200)
    secret_key: str = DEVELOPMENT_SECRET_KEY

    jwt_issuer: str = "calmtrack"
    jwt_audience: str = "calmtrack-api"
    # RFC 8725 / the contract: access tokens live at most 15 minutes.
    access_token_minutes: int = Field(default=15, ge=1, le=15)
    refresh_token_days: int = Field(default=30, ge=1, le=90)
    # A rotated refresh token presented again this soon after its rotation answers another pair of its family
    # instead of revoking it: a lost answer retried, or two refreshes in flight (docs/auth.md). 0 turns it off.
    refresh_reuse_grace_seconds: int = Field(default=30, ge=0, le=300)
    enrollment_code_hours: int = Field(default=72, ge=1, le=72)

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
    webhook_allow_private_targets: bool = False
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

    @model_validator(mode="after")
    def _refuse_weak_key(self) -> Settings:
        if self.environment == "development":
            return self
        if self.secret_key == DEVELOPMENT_SECRET_KEY or len(self.secret_key.encode()) < MIN_SECRET_KEY_BYTES:
            raise ValueError(
                f"SECRET_KEY must be set to a random value of at least {MIN_SECRET_KEY_BYTES} bytes "
                "outside ENVIRONMENT=development"
            )
        return self


def database_url() -> str:
    """The database alone, for commands that need nothing else (migrating needs no signing key)."""
    return os.environ.get("DATABASE_URL") or Settings.model_fields["database_url"].default


@lru_cache
def get_settings() -> Settings:
    return Settings()
