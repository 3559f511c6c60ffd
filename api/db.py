"""Database engine and sessions. Callers give plain URLs; the app picks its async drivers."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

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


def create_engine(database_url: str, *, pool_size: int = 5) -> AsyncEngine:
    url = async_url(database_url)
    if url.get_backend_name() == "sqlite":
        # busy timeout: the embedded server shares one file between concurrent requests.
        engine = create_async_engine(url, connect_args={"timeout": 15})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it is a round trip on every checkout. A connection found dead fails its one request, and
    # SQLAlchemy then invalidates the whole pool, so a database restart costs one error per process, not one per
    # pooled connection.
    # Autocommitted connections (one-statement writes) need no rollback round trip when they go back to the pool.
    # No overflow: a burst waits for a pooled connection instead of opening (and on return closing) extra ones,
    # which under load costs more than the wait.
    return create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_recycle=1800,
                               skip_autocommit_rollback=True)


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
