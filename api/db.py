"""Database engine and sessions. Callers give plain URLs; the app picks its async drivers."""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg
import pydantic_core
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import DatabaseUnavailable
from api.pool import FirstComePool

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


def async_url(database_url: str) -> URL:
    """`sqlite:///x.db` → aiosqlite, `postgresql://…` → asyncpg; an explicit driver is kept as given."""
    url = make_url(database_url)
    backend = url.drivername.split("+", 1)[0]
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql:// URLs")
    if "+" not in url.drivername:
        url = url.set(drivername=_ASYNC_DRIVERS[backend])
    return url


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


# JSON columns (a plan's protocol and assessments, a score's items) are parsed by pydantic-core's parser, a dependency
# already: the same values as the standard library's `json.loads`, in a fifth of its time (a dashboard page parses a
# plan's assessments per row).
_json = pydantic_core.from_json


def _json_text(value: Any) -> str:
    """JSON columns are written by pydantic-core's encoder: compact, UTF-8, NaN and infinities as null (which the
    standard library would write as tokens PostgreSQL refuses), in a fraction of `json.dumps`'s time (a phone's score
    writes three JSON values)."""
    return pydantic_core.to_json(value).decode()


def create_engine(database_url: str, *, pool_size: int = 5) -> AsyncEngine:
    url = async_url(database_url)
    if url.get_backend_name() == "sqlite":
        # busy timeout: the embedded server shares one file between concurrent requests.
        engine = create_async_engine(url, connect_args={"timeout": 15}, json_serializer=_json_text,
                                     json_deserializer=_json)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    else:
        # Autocommitted connections (one-statement writes) need no rollback round trip when they go back to the
        # pool. No overflow: a burst waits for a pooled connection instead of opening (and on return closing) extra
        # ones, which under load costs more than the wait; waiters are served in arrival order (api/pool.py). A
        # connect that takes longer than CONNECT_TIMEOUT_SECONDS is an outage: the client gets its 503 instead of
        # waiting for asyncpg's default minute. JIT compilation is off for these sessions: it pays off for long
        # analytical queries, while every statement here is an indexed look-up over one patient or one page, where
        # compiling (20 ms seen on the dashboard's) costs more than it saves.
        engine = create_async_engine(url, poolclass=FirstComePool, pool_size=pool_size, max_overflow=0,
                                     pool_recycle=1800, skip_autocommit_rollback=True, json_serializer=_json_text,
                                     json_deserializer=_json,
                                     connect_args={"timeout": CONNECT_TIMEOUT_SECONDS,
                                                   "server_settings": {"jit": "off"}})
        # Not pool_pre_ping: that is a round trip on every checkout (the one-statement ingest pays it per score).
        # A backend that PostgreSQL terminated (restart, failover, pg_terminate_backend) closes its socket, and
        # asyncpg notices the end of the stream while the connection sits idle in the pool; checking that flag
        # costs nothing, and the pool replaces such a connection before anyone uses it.
        event.listen(engine.sync_engine, "checkout", _replace_closed)
    event.listen(engine.sync_engine, "do_connect", _connect_or_unavailable)
    return engine


CONNECT_TIMEOUT_SECONDS = 10

# The base classes of every error the drivers (and SQLAlchemy around them) raise; `database_unavailable` tells
# which of them mean "cannot reach the database" (503, retry) rather than a fault of the request or the code (500).
# (Failures to connect never reach them: `_connect_or_unavailable` makes those DatabaseUnavailable.)
DRIVER_ERRORS: tuple[type[Exception], ...] = (sa_exc.SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError,
                                              sqlite3.Error, ConnectionError)

_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    sa_exc.TimeoutError,  # no pooled connection was free within the pool timeout
    ConnectionError,  # the socket was reset or broken under a statement on the raw driver connection
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.ConnectionDoesNotExistError,  # the connection was closed under the statement
    asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, asyncpg.CannotConnectNowError,  # 57P01-03
    asyncpg.TooManyConnectionsError,  # 53300
)
# SQLite: the file is locked beyond the busy timeout, cannot be opened, or its disk fails.
_UNAVAILABLE_SQLITE_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR}


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` (or what caused it) means the database cannot be reached right now."""
    seen: BaseException | None = error
    for _ in range(8):  # the chain: SQLAlchemy's wrapper, the adapter's error, the driver's
        if seen is None:
            return False
        if isinstance(seen, _UNAVAILABLE_ERRORS):
            return True
        if isinstance(seen, sa_exc.DBAPIError) and seen.connection_invalidated:
            return True  # SQLAlchemy recognised a disconnect (and has invalidated the pool)
        if isinstance(seen, sqlite3.Error) and (getattr(seen, "sqlite_errorcode", 0) & 0xFF) in _UNAVAILABLE_SQLITE_CODES:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


def _connect_or_unavailable(dialect: Dialect, _record: Any, cargs: tuple, cparams: dict) -> Any:
    """Whatever stops a new connection (refused, timed out, the database not accepting connections, too many
    clients) means the same to a caller: the database is unavailable for now."""
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as error:
        raise DatabaseUnavailable() from error


def _replace_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if dbapi_connection.driver_connection.is_closed():
        # The pool discards this connection and checks out a new one in its place (SQLAlchemy's documented
        # "pessimistic" disconnect handling through the checkout event).
        raise sa_exc.DisconnectionError("connection closed by the server while idle")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def engine_of(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    return sessions.kw["bind"]
