"""`Idempotency-Key` on creating POSTs (IETF draft "The Idempotency-Key HTTP Header Field").

- same key, same request, first one finished → the stored answer is replayed (status, body, ETag/Location);
- same key, different request (method, route or body) → 422;
- same key while the first request is still running → 409;
- no key → the request simply runs.

Keys are scoped to the caller and kept for `KEY_LIFETIME`. A replay hands back patient data, so it is a read like any
other: the route's `authorize_replay` checks that the caller may still see what the stored answer describes (a
clinician taken off the care team meanwhile gets 404) and audits it. The key is claimed in a transaction of its own before the
work starts, so a concurrent duplicate sees it; a request that fails releases its key, so the client can retry.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Conflict, ValidationFailed
from api.prefer import MINIMAL, PREFERENCE_APPLIED
from api.security.tokens import Caller
from models.base import utcnow
from models.idempotency import IdempotencyRecord

KEY_LIFETIME = dt.timedelta(hours=24)
IN_FLIGHT, COMPLETED = "in_flight", "completed"
REPLAYED_HEADERS = ("etag", "location")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes this POST safe to retry: the same key and body replay the first answer (kept 24 h).",
    ),
]


class Created(BaseModel):
    """What a creating operation answers: status, body and the headers worth replaying."""

    status: int = 201
    body: Any
    headers: dict[str, str] = {}


def _fingerprint(request: Request, body: BaseModel | None) -> str:
    payload = body.model_dump(mode="json") if body is not None else None
    canonical = json.dumps([request.method, request.url.path, payload], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _response(created: Created, minimal: type[BaseModel] | None) -> JSONResponse:
    """The answer as this request asked for it: `minimal`, the record's `Prefer: return=minimal` shape, or None for
    the whole record. Only the whole record is ever stored, so a replay is shaped by the replaying request."""
    if minimal is None:
        return JSONResponse(created.body, status_code=created.status, headers=created.headers)
    body = minimal.model_validate(created.body).model_dump(mode="json")
    return JSONResponse(body, status_code=created.status, headers={**created.headers, PREFERENCE_APPLIED: MINIMAL})


async def _claim(session: AsyncSession, caller: Caller, key: str, fingerprint: str) -> bool:
    """Inserts the in-flight marker; False if the key is already taken (and not expired)."""
    now = utcnow()
    # An expired key is forgotten, so its owner may use it again.
    await session.exec(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.actor_id == caller.user_id, IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at <= now,
        )
    )
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    claimed = await session.exec(
        insert(IdempotencyRecord)
        .values(actor_id=caller.user_id, key=key, request_hash=fingerprint, state=IN_FLIGHT, created_at=now,
                expires_at=now + KEY_LIFETIME)
        .on_conflict_do_nothing()
        .returning(IdempotencyRecord.key)
    )
    won = claimed.scalar_one_or_none() is not None
    await session.commit()
    return won


async def run_idempotent(
    session: AsyncSession,
    caller: Caller,
    key: str | None,
    request: Request,
    body: BaseModel | None,
    operation: Callable[[], Awaitable[Created]],
    authorize_replay: Callable[[dict[str, Any]], Awaitable[None]] | None,
    *,
    minimal: type[BaseModel] | None = None,
) -> JSONResponse:
    """Runs `operation` once per key. `authorize_replay(stored body)` re-authorises (and audits) a replay; None only
    where the route's own dependencies already decide who may see the answer (no patient data in it). `minimal`:
    the request prefers `return=minimal`, answered in this shape (api.prefer)."""
    if key is None:
        return _response(await operation(), minimal)

    fingerprint = _fingerprint(request, body)
    if not await _claim(session, caller, key, fingerprint):
        record = (
            await session.exec(
                select(IdempotencyRecord).where(IdempotencyRecord.actor_id == caller.user_id,
                                                IdempotencyRecord.key == key)
            )
        ).scalar_one()
        if record.request_hash != fingerprint:
            raise ValidationFailed.at(["header", "Idempotency-Key"],
                                      "This Idempotency-Key was already used for a different request")
        if record.state != COMPLETED:
            raise Conflict("A request with this Idempotency-Key is still being processed; retry shortly",
                           code="request_in_progress", retry_after=1)
        stored = record.response_body or {}
        if authorize_replay is not None:
            await authorize_replay(stored.get("body") or {})
            await session.commit()
        return _response(Created(status=record.response_status or 200, body=stored.get("body"),
                                 headers=stored.get("headers", {})), minimal)

    try:
        created = await operation()
    except BaseException:
        await session.rollback()
        await session.exec(
            delete(IdempotencyRecord).where(IdempotencyRecord.actor_id == caller.user_id, IdempotencyRecord.key == key)
        )
        await session.commit()
        raise
    record = await session.get(IdempotencyRecord, (caller.user_id, key))
    if record is not None:
        record.state = COMPLETED
        record.response_status = created.status
        record.response_body = {
            "body": created.body,
            "headers": {name: value for name, value in created.headers.items() if name.lower() in REPLAYED_HEADERS},
        }
        session.add(record)
        await session.commit()
    return _response(created, minimal)
