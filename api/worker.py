"""`calmtrack worker`: the periodic jobs, for any number of worker processes at once.

Each job is safe to run concurrently in several workers and to repeat: what it produces is named so that the
database keeps one of each (an overdue alert per missed due date, by the alerts' unique index; a webhook delivery
per event and subscription, claimed by one worker at a time). A worker runs every job when it starts, then each
again after its interval, each on its own so that a long sweep never holds deliveries up; `--once` runs everything
due once and exits (cron, tests).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.schedules.service import sweep_overdue
from api.settings import Settings
from api.webhooks.delivery import deliver_webhooks

log = logging.getLogger("calmtrack.worker")


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[async_sessionmaker[AsyncSession]], Awaitable[int]]


def jobs(settings: Settings) -> list[Job]:
    return [
        Job("overdue_sweep", settings.overdue_sweep_seconds, sweep_overdue),
        # Outbox events to webhook deliveries, and every delivery that is due (api/webhooks/delivery.py).
        Job("webhook_delivery", settings.webhook_delivery_seconds, partial(deliver_webhooks, settings=settings)),
    ]


async def run_once(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> dict[str, int]:
    """Every job once; returns what each produced."""
    return {job.name: await _run(job, sessions) for job in jobs(settings)}


async def run_forever(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    async def repeat(job: Job) -> None:
        while True:
            started = time.monotonic()
            await _run(job, sessions)
            await asyncio.sleep(max(0.0, started + job.every_seconds - time.monotonic()))

    await asyncio.gather(*(repeat(job) for job in jobs(settings)))


async def _run(job: Job, sessions: async_sessionmaker[AsyncSession]) -> int:
    """One run of a job. A failure is logged and the job tried again at its next turn: a database that is down
    for a while must not end the worker."""
    started = time.monotonic()
    try:
        produced = await job.run(sessions)
    except Exception as exc:  # noqa: BLE001 - any failure of one run is logged, never fatal
        log.error("job %s failed: %s", job.name, type(exc).__name__)
        return 0
    # Idle runs (most of a frequent job's) log at debug level only.
    log.log(logging.INFO if produced else logging.DEBUG, "job %s: %d in %.0f ms", job.name, produced,
            (time.monotonic() - started) * 1000)
    return produced
