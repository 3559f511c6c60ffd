"""Column types and helpers shared by every table."""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from typing import Any

from sqlalchemy import DateTime, TypeDecorator
from sqlmodel import Field


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def uuid7() -> uuid.UUID:
    """A UUIDv7 (RFC 9562 section 5.7): the Unix time in milliseconds, then 74 random bits. For rows the server
    names and appends in time order (audit events, outbox events): a new row's key lands next to the last one in
    the primary key's B-tree instead of on a random leaf (a hot page rather than a cold one, and not one more page
    written whole to the WAL after each checkpoint). Python 3.11 has no uuid.uuid7."""
    random = int.from_bytes(os.urandom(10))
    return uuid.UUID(int=(time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | (random >> 68) << 64 | 0b10 << 62
                     | random & ((1 << 62) - 1))


class UTCDateTime(TypeDecorator):
    """Stores instants in UTC and always hands back aware datetimes, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(dt.UTC)
        # SQLite has no time zones: store naive UTC so that text comparison orders correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)

    @property
    def python_type(self) -> type:
        return dt.datetime


def id_field(**kwargs: Any) -> Any:
    return Field(default_factory=uuid.uuid4, primary_key=True, **kwargs)


def instant_field(*, default_now: bool = False, **kwargs: Any) -> Any:
    if default_now:
        kwargs["default_factory"] = utcnow
    return Field(sa_type=UTCDateTime, **kwargs)
