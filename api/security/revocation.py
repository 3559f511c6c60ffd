"""Ending access before an access token expires: deactivated users, revoked API clients, ended login sessions.

Access tokens are stateless JWTs, valid until `exp` (at most 15 minutes). To end one sooner, a revocation row names a
principal (a user or an API client) or a login session (a refresh-token family, the token's `sid`): every access
token of that subject issued before the revocation is refused. Rows live in the database, so every server process
sees them: each process holds the live rows in memory, never uses a copy older than `REVOCATION_POLL_SECONDS`
(default 0.5 s), and rereads them at once after a revocation committed in the same process. Checking a token is
then two dictionary lookups.

The reread starts in the background once the copy is half that old (one small query per process every quarter
second, whatever the traffic), so requests do not wait for it; a request waits only for a copy past the full
interval (the background reread failed or is late). Waiting on every reread held every request that arrived during
it: under load, a stall every interval, which was most of the p99 latency (bench/README.md, 2026-11-29). On
PostgreSQL the reread has a connection of its own (api/app.py): from the requests' pool it queued behind them
(under wrk -c32 on the chart, a reread took 68 ms at the median, 47 ms on its own connection).

Tokens are compared by their issue time (`iat`, to the millisecond), so a token issued after the revocation (a role
change followed by a refresh, a re-enrollment's new session) works at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import time
import uuid
from enum import StrEnum

from sqlalchemy import DateTime, bindparam, event, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from api.security.tokens import Caller
from api.statements import DriverStatement, one_statement
from models.base import utcnow
from models.users import AccessRevocation

logger = logging.getLogger(__name__)

# Longer than any access token's lifetime (settings cap it at 15 minutes), with room for clock skew.
KEEP_FOR = dt.timedelta(minutes=20)


class Subject(StrEnum):
    principal = "principal"  # a user or an API client: every token of theirs
    session = "session"  # one login session (refresh-token family): the tokens issued within it


def revoke(
    session: AsyncSession, subject: Subject, subject_id: uuid.UUID, reason: str, *, now: dt.datetime | None = None
) -> None:
    """Adds a revocation to the caller's transaction; it takes effect when that commits.

    The time is truncated to the millisecond, the precision of a token's `iat` (rounded to the nearest one): a
    token issued by the same request right after the revocation (a re-enrollment's new pair, a refresh
    a millisecond after a role change) must never round to before it."""
    now = now or utcnow()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    session.add(AccessRevocation(subject_type=subject, subject_id=subject_id, reason=reason, revoked_at=now,
                                 expires_at=now + KEEP_FOR))
    session.info[_CHANGED] = True


# A revocation committed in this process makes every cache of the process reload on its next check: the request
# after a deactivation must already be refused here, not only within the polling interval.
_CHANGED = "calmtrack.revocations_changed"
_generation = 0


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    global _generation
    if session.info.pop(_CHANGED, False):
        _generation += 1


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)


_LIVE_ROWS = (select(AccessRevocation.subject_type, AccessRevocation.subject_id, AccessRevocation.revoked_at)
              .where(AccessRevocation.expires_at > bindparam("now", type_=DateTime(timezone=True))))


@functools.cache
def _live_rows(dialect: Dialect) -> DriverStatement:
    return DriverStatement.compile(_LIVE_ROWS, dialect)


class Revocations:
    """One process's copy of the live revocations (one per app: `app.state.revocations`)."""

    def __init__(self, engine: AsyncEngine, *, poll_seconds: float) -> None:
        self._engine = engine
        self._poll_seconds = poll_seconds
        self._revoked: dict[tuple[str, uuid.UUID], float] = {}
        self._loaded_at = -float("inf")
        self._loaded_generation = -1
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task | None = None

    async def is_revoked(self, caller: Caller) -> bool:
        if self._stale(self._poll_seconds):
            await self._reload(self._poll_seconds)
        elif self._refreshing is None and self._stale(self._poll_seconds / 2):
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())
        revoked = self._revoked
        if not revoked:
            return False
        issued_at = caller.issued_at
        for key in ((Subject.principal, caller.user_id), (Subject.session, caller.session_id)):
            revoked_at = revoked.get(key)  # type: ignore[arg-type]
            if revoked_at is not None and issued_at < revoked_at:
                return True
        return False

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def _stale(self, age: float) -> bool:
        return self._loaded_generation != _generation or time.monotonic() - self._loaded_at >= age

    async def _refresh(self) -> None:
        try:
            await self._reload(self._poll_seconds / 2)
        except Exception:  # noqa: BLE001 - a request past the interval rereads (and reports the failure) itself
            logger.warning("background reread of access revocations failed", exc_info=True)
        finally:
            self._refreshing = None

    async def close(self) -> None:
        """Cancels a reread in flight (application shutdown, before the engine is disposed)."""
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing

    async def _reload(self, age: float) -> None:
        """Rereads the rows unless a copy younger than `age` was loaded meanwhile (while this one waited)."""
        async with self._lock:
            if not self._stale(age):
                return
            generation, started = _generation, time.monotonic()
            if one_statement(self._engine):
                # One round trip on the driver: through a SQLAlchemy connection it is three (BEGIN, the query,
                # ROLLBACK), each waiting its turn behind the requests of a busy process.
                rows = await _live_rows(self._engine.dialect).fetch(self._engine, {"now": utcnow()})
            else:
                async with self._engine.connect() as connection:
                    rows = (await connection.execute(_LIVE_ROWS, {"now": utcnow()})).all()
            revoked: dict[tuple[str, uuid.UUID], float] = {}
            for kind, subject_id, revoked_at in rows:
                key = (kind, subject_id)
                revoked[key] = max(revoked.get(key, 0.0), revoked_at.timestamp())
            self._revoked = revoked
            self._loaded_at, self._loaded_generation = started, generation

