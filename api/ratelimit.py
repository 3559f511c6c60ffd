"""Per-caller rate limits (OWASP API4), through the `limits` library.

Every authenticated request counts against its caller (a user today; an API client once integrations exist) in a
sliding window (the library's sliding-window counter: two counters per caller, constant cost, no burst at window
boundaries). Past the limit the answer is 429 with `Retry-After`. The counters live where RATE_LIMIT_STORAGE_URL
says: `memory://` (the zero-setup default: one process only) or `redis://host:port/db`, which every API process
shares.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from api.errors import RateLimited

log = logging.getLogger("calmtrack.ratelimit")


def _async_storage_url(url: str) -> tuple[str, dict[str, str]]:
    if url.startswith(("redis://", "rediss://")):
        return "async+" + url, {"implementation": "redispy"}  # redis-py, already a dependency
    if url == "memory://":
        return "async+memory://", {}
    raise ValueError(f"unsupported rate-limit storage {url!r}: use memory:// or redis://")


class RateLimiter:
    def __init__(self, limit: str, storage_url: str) -> None:
        self.item: RateLimitItem = parse(limit)
        url, options = _async_storage_url(storage_url)
        self.limiter = SlidingWindowCounterRateLimiter(storage_from_string(url, **options))

    async def check(self, kind: str, key: str) -> None:
        """Counts one request of caller `key`; raises RateLimited (429) once it is over the limit.

        If the store cannot be reached the request goes through (and the failure is logged): the limits protect
        the service and must not be what takes it down."""
        try:
            if await self.limiter.hit(self.item, kind, key):
                return
        except Exception as exc:  # the store's own errors differ by backend
            log.warning("rate-limit store unavailable (%s); request allowed", type(exc).__name__)
            return
        stats = await self.limiter.get_window_stats(self.item, kind, key)
        raise RateLimited(f"More than {self.item} requests; slow down",
                          retry_after=math.ceil(stats.reset_time - time.time()))
