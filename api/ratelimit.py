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

# How often the in-process store drops the counters of windows that have ended: only memory is at stake (a count is
# checked against its window's expiry whenever it is read), and a pass over 20,000 counters takes about 4 ms.
SWEEP_SECONDS = 5.0


class InProcessStorage(MemoryStorage):
    """limits' `memory://` storage, swept by the requests that count rather than by a timer thread.

    The library starts a `threading.Timer` for a pass over every counter whenever the previous one has run, that
    is on nearly every hit more than 10 ms after the last pass: the request waits for the thread to start (about
    400 µs), and with 10,000 callers each pass costs about 4 ms of the process's time, up to a hundred times a
    second (bench/README.md, 2026-11-30). Here the pass runs in a counting call, at most once per SWEEP_SECONDS.
    """

    def __init__(self) -> None:
        super().__init__()
        self.timer.cancel()  # the one the library's constructor starts
        self.swept_at = time.monotonic()

    # The library's hook, called on every count (a name-mangled private method: limits is pinned in the lock file,
    # and tests/test_rate_limits.py fails if this stops being the hook).
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now - self.swept_at >= SWEEP_SECONDS:
            self.swept_at = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class RateLimiter:
    def __init__(self, limit: str, storage_url: str) -> None:
        self.item: RateLimitItem = parse(limit)
        # memory://: the library's synchronous limiter. Its counters are a dict in this process, so a hit never
        # waits on anything; old keys are swept as InProcessStorage says. The asynchronous memory storage started a
        # pass over every key on nearly every hit, in the request's own time: with 10,000 callers in the window a
        # hit cost 418 µs instead of 10 µs (bench/README.md, 2026-11-30).
        self.local: local.SlidingWindowCounterRateLimiter | None = None
        self.shared: SlidingWindowCounterRateLimiter | None = None
        if storage_url == "memory://":
            self.local = local.SlidingWindowCounterRateLimiter(InProcessStorage())
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
