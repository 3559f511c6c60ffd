"""The connection pool's queue: first come, first served, and no connection lost to a caller that stopped waiting
(api/pool.py)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.util import queue as sqla_queue
from sqlalchemy.util.concurrency import greenlet_spawn

from api.db import create_engine, database_unavailable
from api.pool import FirstComePool, FirstComeQueue
from tests.conftest import ON_POSTGRES


async def _settle() -> None:
    """Lets every runnable task run until it waits."""
    for _ in range(5):
        await asyncio.sleep(0)


def _waiter(queue: FirstComeQueue, served: list, name: str, timeout: float | None = 5) -> asyncio.Task:
    async def wait() -> None:
        served.append((name, await greenlet_spawn(queue.get, True, timeout)))
    return asyncio.create_task(wait())


async def test_a_returned_connection_goes_to_the_longest_waiter_not_to_a_newcomer():
    queue: FirstComeQueue[str] = FirstComeQueue(3)
    served: list = []
    waiters = [_waiter(queue, served, name) for name in "abc"]
    await _settle()
    queue.put_nowait("one")
    # Arrives after "one" came back but before "a" has run: it must not take it.
    waiters.append(_waiter(queue, served, "newcomer"))
    await _settle()
    assert served == [("a", "one")]
    for item in ("two", "three", "four"):
        queue.put_nowait(item)
        await _settle()
    assert served == [("a", "one"), ("b", "two"), ("c", "three"), ("newcomer", "four")]
    assert queue.empty()
    await asyncio.gather(*waiters)


async def test_an_idle_connection_is_taken_at_once_and_a_full_queue_refuses_more():
    queue: FirstComeQueue[str] = FirstComeQueue(1)
    queue.put_nowait("one")
    assert queue.full() and queue.qsize() == 1
    with pytest.raises(sqla_queue.Full):
        queue.put_nowait("two")
    assert await greenlet_spawn(queue.get, True, 5) == "one"
    with pytest.raises(sqla_queue.Empty):
        await greenlet_spawn(queue.get, False)


async def test_a_wait_that_times_out_is_empty_and_loses_nothing():
    queue: FirstComeQueue[str] = FirstComeQueue(2)
    with pytest.raises(sqla_queue.Empty):
        await greenlet_spawn(queue.get, True, 0.01)
    queue.put_nowait("one")  # nobody waits any more: it stays idle for the next caller
    assert queue.qsize() == 1
    assert await greenlet_spawn(queue.get, True, 0.01) == "one"


async def test_a_connection_handed_to_a_caller_that_was_cancelled_goes_to_the_next():
    queue: FirstComeQueue[str] = FirstComeQueue(2)
    served: list = []
    first, second = _waiter(queue, served, "first"), _waiter(queue, served, "second")
    await _settle()
    queue.put_nowait("one")  # handed to "first", which has not run yet...
    first.cancel()  # ...and is cancelled before it does (its client went away)
    await _settle()
    assert first.cancelled()
    assert served == [("second", "one")]
    await second


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["arrive", "release", "cancel"]), max_size=30), st.integers(1, 4))
def test_every_connection_is_kept_and_callers_are_served_in_arrival_order(steps, connections):
    """Any interleaving of callers arriving, connections coming back and waiting callers giving up: the connections
    are all accounted for (idle or held), nobody waits while one is idle, and callers are served in the order they
    arrived, those that gave up aside."""

    async def scenario() -> None:
        queue: FirstComeQueue[int] = FirstComeQueue(connections)
        for connection in range(connections):
            queue.put_nowait(connection)
        served: list = []
        arrived: list[str] = []
        waiting: dict[str, asyncio.Task] = {}
        held: list[int] = []  # connections the served callers have not given back
        seen = 0
        for number, step in enumerate(steps):
            if step == "arrive":
                name = f"caller{number}"
                arrived.append(name)
                waiting[name] = _waiter(queue, served, name)
            elif step == "release" and held:
                queue.put_nowait(held.pop(0))
            elif step == "cancel":
                pending = [name for name, task in waiting.items() if not task.done()]
                if pending:
                    waiting.pop(pending[0]).cancel()
            await _settle()
            held.extend(item for _, item in served[seen:])
            seen = len(served)
            live = [task for task in waiting.values() if not task.done()]
            assert not (live and queue.qsize()), "a caller waits while a connection is idle"
            assert sorted(held + _idle(queue)) == list(range(connections))
        order = [name for name, _ in served]
        assert order == [name for name in arrived if name in order]
        for task in waiting.values():
            task.cancel()
        await asyncio.gather(*waiting.values(), return_exceptions=True)

    asyncio.run(scenario())


def _idle(queue: FirstComeQueue) -> list:
    return list(queue._idle)


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite does not pool its connections this way")
async def test_the_postgresql_pool_serves_waiting_requests_in_order(database_url):
    engine = create_engine(database_url, pool_size=1)
    assert isinstance(engine.pool, FirstComePool)
    order: list[int] = []

    async def use(number: int) -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            order.append(number)

    try:
        held = await engine.raw_connection()
        tasks = []
        for number in range(5):
            tasks.append(asyncio.create_task(use(number)))
            await _settle()
        # A caller that is ready to run when the connection comes back (as on a busy server: the one-statement
        # requests give theirs back without yielding) waits its turn instead of taking it from caller 0.
        tasks.append(asyncio.create_task(use(5)))
        held.close()
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3, 4, 5]
        assert engine.pool.checkedout() == 0
    finally:
        await engine.dispose()


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite does not pool its connections this way")
async def test_no_connection_within_the_pool_timeout_means_the_database_is_unavailable(database_url):
    engine = create_engine(database_url, pool_size=1)
    engine.pool._timeout = 0.05  # SQLAlchemy's 30 s, shortened for the test
    try:
        async with engine.connect():
            with pytest.raises(sa_exc.TimeoutError) as raised:
                async with engine.connect():
                    pass
        assert database_unavailable(raised.value)  # answered 503 with Retry-After, like an outage
        async with engine.connect() as connection:  # the waiter that gave up took nothing with it
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        assert engine.pool.checkedout() == 0
    finally:
        await engine.dispose()
