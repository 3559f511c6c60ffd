"""The worker's webhook job: outbox events → deliveries → signed POSTs, at least once, for any number of workers.

1. **Fan-out.** Undispatched outbox events are taken in one statement that marks them dispatched and returns them
   (`UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING …` on PostgreSQL; SQLite has one writer, so
   the same statement without the locking clause is already atomic there). In the same transaction each becomes a
   delivery for every active subscription of its organization that wants its type and existed when it happened.
   The (subscription, event) pair is unique, so nothing can fan out twice; a worker that dies before committing
   leaves the events undispatched for the next one.
2. **Claim.** Due deliveries are claimed the same way, with a lease: the claim sets `lease_until` and a token of
   the claiming run and commits at once, so no transaction stays open during HTTP. A worker killed mid-delivery
   never completes its claim; the lease runs out and any worker claims the delivery again (at least once; the
   receiver de-duplicates by `webhook-id`). Claims count attempts, so a delivery that kills its worker every time
   still ends: after its last claim it fails instead of being claimed again.
3. **Send.** A POST of the stored body (the same bytes on every attempt), signed with the `standardwebhooks`
   package, through `PinnedTransport` (the SSRF check against the addresses resolved now, and a connection to
   the address checked), with short timeouts, redirects not followed. Only 2xx is success.
4. **Record.** The attempt is written; the delivery succeeds, is rescheduled with back-off (``RETRY_AT``, with
   jitter, never sooner than the receiver's `Retry-After`), or fails for good after the last attempt, which marks
   its subscription `failing` (nothing more is sent to it until it is active again). 410 Gone disables the
   subscription at once. A success puts a failing subscription back to active.

`now` is injectable so that tests drive the schedule without sleeping; the signature's `webhook-timestamp` is always
the real time of sending, as receivers compare it with their own clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import functools
import json
import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Select, and_, case, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks import Webhook

from api.db import engine_of
from api.settings import Settings
from api.webhooks.schemas import TEST_EVENT
from api.webhooks.targets import PinnedTransport, Resolver, TargetRefused, system_resolver
from models.base import utcnow
from models.outbox import OutboxEvent
from models.webhooks import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookStatus

log = logging.getLogger("calmtrack.webhooks")

# When each retry is due, counted from the first attempt (../shared/design/security.md): ten attempts over a day.
RETRY_AT = tuple(dt.timedelta(seconds=s) for s in (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 14 * 3600,
                                                   20 * 3600, 24 * 3600))
MAX_ATTEMPTS = len(RETRY_AT) + 1
TEST_ATTEMPTS = 1  # a test delivery is tried once: its answer is what the admin wants to see
JITTER = 0.1  # each wait is stretched or shrunk by up to 10 %, so that retries of many deliveries spread out
MAX_RETRY_AFTER = dt.timedelta(hours=24)

TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=5.0)
ATTEMPT_DEADLINE_SECONDS = 30.0  # the whole attempt, however slowly the receiver drips its answer
LEASE = dt.timedelta(seconds=120)  # well beyond an attempt's deadline: a live worker never loses its claim
FAN_OUT_BATCH = 200
CLAIM_BATCH = 10  # claimed and sent at once: the concurrency of one worker
RUN_BUDGET_SECONDS = 20.0  # one run keeps claiming while batches come back full, this long at most
USER_AGENT = "Calmtrack-Webhooks/1.0"
ERROR_LENGTH = 500
UNANSWERED = "no answer recorded: the worker stopped during the last attempt"

Clock = Callable[[], dt.datetime]


def instant_text(instant: dt.datetime) -> str:
    """RFC 3339 in UTC with `Z`, as the API writes instants."""
    return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def payload_of(type: str, timestamp: dt.datetime, data: Mapping[str, Any]) -> str:
    """The body of every delivery of an event: `{type, timestamp, data}`, with ids in `data`, never clinical content."""
    return json.dumps({"type": type, "timestamp": instant_text(timestamp), "data": dict(data)},
                      separators=(",", ":"))


def retry_delay(failed_attempt: int, rng: random.Random) -> dt.timedelta:
    """The wait after failed attempt `failed_attempt` (1 = the first) before the next: the gap between their times
    in RETRY_AT, with jitter."""
    gap = RETRY_AT[failed_attempt - 1] - (RETRY_AT[failed_attempt - 2] if failed_attempt > 1 else dt.timedelta())
    return gap * rng.uniform(1 - JITTER, 1 + JITTER)


@functools.cache
def _tls() -> ssl.SSLContext:
    """The certificate store, loaded once per process rather than on every run (a run is every second)."""
    return httpx.create_ssl_context()


def _insert(session: AsyncSession):
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert


def _skip_locked(stmt: Select, sessions: async_sessionmaker[AsyncSession], table: type) -> Select:
    """PostgreSQL: rows another worker is claiming right now are skipped instead of waited for."""
    if engine_of(sessions).dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=True, of=table)
    return stmt


# --- 1. fan-out ----------------------------------------------------------------------------------------------------

async def fan_out(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, *, batch: int = FAN_OUT_BATCH
) -> tuple[int, int]:
    """One batch of outbox events into deliveries; (events dispatched, deliveries created)."""
    async with sessions() as session:
        now = clock()
        pending = _skip_locked(
            select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.created_at).limit(batch), sessions, OutboxEvent)
        # A write first: on SQLite the transaction takes the write lock at once instead of upgrading a read later.
        events = (await session.exec(
            update(OutboxEvent).where(OutboxEvent.id.in_(pending.scalar_subquery()))
            .values(dispatched_at=now)
            .returning(OutboxEvent.id, OutboxEvent.organization_id, OutboxEvent.type, OutboxEvent.data,
                       OutboxEvent.created_at)
        )).all()
        if not events:
            return 0, 0
        endpoints = (await session.exec(
            select(WebhookEndpoint.id, WebhookEndpoint.organization_id, WebhookEndpoint.events,
                   WebhookEndpoint.created_at)
            .where(WebhookEndpoint.organization_id.in_({event.organization_id for event in events}),
                   WebhookEndpoint.status == WebhookStatus.active)
        )).all()
        rows = [
            {"id": uuid.uuid4(), "organization_id": event.organization_id, "endpoint_id": endpoint.id,
             "event_id": event.id, "event_type": event.type,
             "payload": payload_of(event.type, event.created_at, event.data),
             "status": DeliveryStatus.pending, "attempts": 0, "max_attempts": MAX_ATTEMPTS, "next_attempt_at": now,
             "created_at": now}
            for event in events for endpoint in endpoints
            if endpoint.organization_id == event.organization_id and event.type in endpoint.events
            and event.created_at >= endpoint.created_at
        ]
        if rows:
            await session.exec(_insert(session)(WebhookDelivery).values(rows)
                               .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"]))
        await session.commit()
        return len(events), len(rows)


# --- 2. claim ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    lease_token: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    secret: str
    event_id: uuid.UUID
    event_type: str
    payload: str
    attempt: int  # this attempt's number
    max_attempts: int

    @property
    def is_test(self) -> bool:
        return self.event_type == TEST_EVENT


def _claimable(now: dt.datetime):
    """Due, not leased (or its lease ran out), and its subscription active (a test goes out whatever the state)."""
    active = select(WebhookEndpoint.id).where(WebhookEndpoint.status == WebhookStatus.active)
    return and_(
        WebhookDelivery.status == DeliveryStatus.pending,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
        or_(WebhookDelivery.event_type == TEST_EVENT, WebhookDelivery.endpoint_id.in_(active)),
    )


async def claim(sessions: async_sessionmaker[AsyncSession], clock: Clock, *, batch: int = CLAIM_BATCH) -> list[Claimed]:
    """Leases up to `batch` due deliveries to this caller and commits; no two callers ever hold the same one."""
    token = uuid.uuid4()
    async with sessions() as session:
        now = clock()
        await _abandon_unanswered_last_attempts(session, now)
        due = _skip_locked(select(WebhookDelivery.id)
                           .where(_claimable(now), WebhookDelivery.attempts < WebhookDelivery.max_attempts)
                           .order_by(WebhookDelivery.next_attempt_at).limit(batch), sessions, WebhookDelivery)
        leased = (await session.exec(
            update(WebhookDelivery).where(WebhookDelivery.id.in_(due.scalar_subquery()))
            .values(attempts=WebhookDelivery.attempts + 1, lease_until=now + LEASE, lease_token=token)
            .returning(WebhookDelivery.id, WebhookDelivery.endpoint_id, WebhookDelivery.event_id,
                       WebhookDelivery.event_type, WebhookDelivery.payload, WebhookDelivery.attempts,
                       WebhookDelivery.max_attempts)
        )).all()
        if not leased:
            await session.commit()  # what was abandoned
            return []
        targets = {row.id: row for row in (await session.exec(
            select(WebhookEndpoint.id, WebhookEndpoint.url, WebhookEndpoint.secret)
            .where(WebhookEndpoint.id.in_({row.endpoint_id for row in leased}))
        )).all()}
        await session.commit()
    return [Claimed(id=row.id, lease_token=token, endpoint_id=row.endpoint_id, url=targets[row.endpoint_id].url,
                    secret=targets[row.endpoint_id].secret, event_id=row.event_id, event_type=row.event_type,
                    payload=row.payload, attempt=row.attempts, max_attempts=row.max_attempts)
            for row in leased if row.endpoint_id in targets]


async def _abandon_unanswered_last_attempts(session: AsyncSession, now: dt.datetime) -> None:
    """A delivery whose last attempt's worker died (its lease ran out with nothing recorded) has used its attempts:
    it fails like one whose last attempt failed, instead of being sent without end."""
    abandoned = (await session.exec(
        update(WebhookDelivery)
        .where(_claimable(now), WebhookDelivery.attempts >= WebhookDelivery.max_attempts)
        .values(status=DeliveryStatus.failed, completed_at=now, lease_until=None, lease_token=None,
                last_status_code=None, last_error=UNANSWERED)
        .returning(WebhookDelivery.endpoint_id, WebhookDelivery.event_type)
    )).all()
    endpoints = {row.endpoint_id for row in abandoned if row.event_type != TEST_EVENT}
    if endpoints:
        await session.exec(update(WebhookEndpoint)
                           .where(WebhookEndpoint.id.in_(endpoints), WebhookEndpoint.status == WebhookStatus.active)
                           .values(status=WebhookStatus.failing, failing_since=now, last_failure_at=now,
                                   last_error=UNANSWERED))


# --- 3. send -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    started_at: dt.datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    retry_after: dt.timedelta | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def signed_headers(secret: str, event_id: uuid.UUID, payload: str, at: dt.datetime) -> dict[str, str]:
    """Standard Webhooks headers for one attempt, signed by the reference implementation."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": str(event_id),
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(str(event_id), at, payload),
    }


def _retry_after(value: str | None, now: dt.datetime) -> dt.timedelta | None:
    """A Retry-After header (seconds or an HTTP date) as a wait, or None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(dt.timedelta(seconds=int(value[:9])), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return min(max(when - now, dt.timedelta()), MAX_RETRY_AFTER)


def _failure(response: httpx.Response) -> str | None:
    if 200 <= response.status_code < 300:
        return None
    if 300 <= response.status_code < 400:
        location = response.headers.get("location", "")
        return f"HTTP {response.status_code}: redirect not followed (Location: {location[:200]})"
    if response.status_code == 410:
        return "HTTP 410 Gone: the receiver asked for no more deliveries; the webhook is disabled"
    return f"HTTP {response.status_code}"


async def send(client: httpx.AsyncClient, claimed: Claimed, clock: Clock) -> Outcome:
    started_at, started = clock(), time.monotonic()

    def outcome(**fields: Any) -> Outcome:
        return Outcome(started_at=started_at, duration_ms=round((time.monotonic() - started) * 1000), **fields)

    headers = signed_headers(claimed.secret, claimed.event_id, claimed.payload, utcnow())
    try:
        async with asyncio.timeout(ATTEMPT_DEADLINE_SECONDS):
            request = client.build_request("POST", claimed.url, content=claimed.payload.encode(), headers=headers)
            # The answer's body is never read: nothing in it matters, and it could be huge.
            response = await client.send(request, stream=True)
            await response.aclose()
    except TargetRefused as refused:
        return outcome(error=str(refused)[:ERROR_LENGTH])
    except (TimeoutError, httpx.TimeoutException):
        return outcome(error="timed out")
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return outcome(error=f"{type(error).__name__}: {error}"[:ERROR_LENGTH] if str(error) else type(error).__name__)
    return outcome(status_code=response.status_code, error=_failure(response),
                   retry_after=_retry_after(response.headers.get("retry-after"), started_at))


# --- 4. record -----------------------------------------------------------------------------------------------------

async def record(sessions: async_sessionmaker[AsyncSession], claimed: Claimed, outcome: Outcome, clock: Clock,
                 rng: random.Random) -> None:
    """The attempt and what follows from it, in one transaction. A claim that is no longer ours (its lease ran out
    and another worker took the delivery) only adds the attempt: the delivery's state is the new holder's."""
    now = clock()
    last = {"last_status_code": outcome.status_code, "last_error": outcome.error, "lease_until": None,
            "lease_token": None}
    exhausted = claimed.attempt >= claimed.max_attempts
    if outcome.succeeded:
        values = {"status": DeliveryStatus.succeeded, "completed_at": now}
    elif outcome.gone or exhausted:
        values = {"status": DeliveryStatus.failed, "completed_at": now}
    else:
        wait = retry_delay(claimed.attempt, rng)
        values = {"next_attempt_at": now + max(wait, outcome.retry_after or dt.timedelta())}
    async with sessions() as session:
        try:
            ours = (await session.exec(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == claimed.id, WebhookDelivery.lease_token == claimed.lease_token)
                .values(**values, **last).returning(WebhookDelivery.id)
            )).first() is not None
            if not ours and not (await session.exec(
                    select(exists().where(WebhookDelivery.id == claimed.id)))).scalar():
                return  # the webhook was deleted meanwhile
            session.add(WebhookAttempt(delivery_id=claimed.id, attempt=claimed.attempt, started_at=outcome.started_at,
                                       duration_ms=outcome.duration_ms, status_code=outcome.status_code,
                                       error=outcome.error, succeeded=outcome.succeeded))
            await session.exec(update(WebhookEndpoint).where(WebhookEndpoint.id == claimed.endpoint_id)
                               .values(**_endpoint_change(claimed, outcome, now, ours=ours, exhausted=exhausted)))
            await session.commit()
        except IntegrityError:
            await session.rollback()  # the webhook was deleted between the check and the insert
    if not outcome.succeeded:
        log.warning("webhook %s delivery %s attempt %d/%d failed: %s", claimed.endpoint_id, claimed.id,
                    claimed.attempt, claimed.max_attempts, outcome.error)


def _endpoint_change(claimed: Claimed, outcome: Outcome, now: dt.datetime, *, ours: bool,
                     exhausted: bool) -> dict[str, Any]:
    status = WebhookEndpoint.status
    if outcome.succeeded:
        # A success ends a failing state (an admin's `disabled` stays).
        back = status == WebhookStatus.failing
        return {"last_success_at": now, "status": case((back, WebhookStatus.active), else_=status),
                "failing_since": case((back, None), else_=WebhookEndpoint.failing_since)}
    change: dict[str, Any] = {"last_failure_at": now, "last_error": outcome.error}
    if outcome.gone:
        change["status"] = WebhookStatus.disabled
    elif exhausted and ours and not claimed.is_test:
        active = status == WebhookStatus.active
        change["status"] = case((active, WebhookStatus.failing), else_=status)
        change["failing_since"] = case((active, now), else_=WebhookEndpoint.failing_since)
    return change


# --- the job -------------------------------------------------------------------------------------------------------

async def deliver_webhooks(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    resolver: Resolver | None = None,
    network: httpx.AsyncBaseTransport | None = None,
    rng: random.Random | None = None,
) -> int:
    """One run: fans out every new outbox event, then sends what is due; answers how many attempts it made.

    `now` fixes the run's clock (tests); `resolver` resolves target names (default: the system's); `network` is
    the transport that actually connects, under the SSRF check (default: httpx's)."""
    clock: Clock = (lambda: now) if now is not None else utcnow
    rng = rng or random.Random()
    deadline = time.monotonic() + RUN_BUDGET_SECONDS
    while (await fan_out(sessions, clock))[0] == FAN_OUT_BATCH and time.monotonic() < deadline:
        pass
    transport = PinnedTransport(settings, resolver=resolver or system_resolver,
                                network=network or httpx.AsyncHTTPTransport(retries=0, verify=_tls()))
    attempts = 0
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT, follow_redirects=False,
                                 trust_env=False) as client:

        async def attempt(claimed: Claimed) -> None:
            await record(sessions, claimed, await send(client, claimed, clock), clock, rng)

        while True:
            batch = await claim(sessions, clock)
            # Every attempt of the batch finishes (or fails on its own) before the client closes; a failure to
            # record one (the database went away) then fails the run, and its claim waits for its lease to end.
            failures = [r for r in await asyncio.gather(*(attempt(c) for c in batch), return_exceptions=True)
                        if isinstance(r, BaseException)]
            if failures:
                raise failures[0]
            attempts += len(batch)
            if len(batch) < CLAIM_BATCH or time.monotonic() > deadline:
                return attempts

