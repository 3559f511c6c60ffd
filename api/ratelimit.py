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
from limits import strategies as local
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import MemoryStorage, storage_from_string

from api.errors import RateLimited

log = logging.getLogger("calmtrack.ratelimit")


class RateLimiter:
    def __init__(self, limit: str, storage_url: str) -> None:
        self.item: RateLimitItem = parse(limit)
        # memory://: the library's synchronous limiter. Its counters are a dict in this process, so a hit never
        # waits on anything, and its storage expires old keys from a timer thread (one pass per 10 ms at most).
        # The asynchronous memory storage started a pass on nearly every hit, in the request's own time: with
        # 10,000 callers in the window a hit cost 418 µs instead of 10 µs (bench/README.md, 2026-11-30).
        self.local: local.SlidingWindowCounterRateLimiter | None = None
        self.shared: SlidingWindowCounterRateLimiter | None = None
        if storage_url == "memory://":
            self.local = local.SlidingWindowCounterRateLimiter(MemoryStorage())
        elif storage_url.startswith(("redis://", "rediss://")):
            self.shared = SlidingWindowCounterRateLimiter(  # redis-py, already a dependency
                storage_from_string("async+" + storage_url, implementation="redispy"))
        else:
            raise ValueError(f"unsupported rate-limit storage {storage_url!r}: use memory:// or redis://")

    async def check(self, kind: str, key: str) -> None:
        """Counts one request of caller `key`; raises RateLimited (429) once it is over the limit.

        If the store cannot be reached the request goes through (and the failure is logged): the limits protect
        the service and must not be what takes it down."""
        try:
            if self.local is not None:
                if self.local.hit(self.item, kind, key):
                    return
                stats = self.local.get_window_stats(self.item, kind, key)
            else:
                assert self.shared is not None
                if await self.shared.hit(self.item, kind, key):
                    return
                stats = await self.shared.get_window_stats(self.item, kind, key)
        except Exception as exc:  # the store's own errors differ by backend
            log.warning("rate-limit store unavailable (%s); request allowed", type(exc).__name__)
            return
        raise RateLimited(f"More than {self.item} requests; slow down",
                          retry_after=math.ceil(stats.reset_time - time.time()))
