"""`CallLimit`: one cap shared by every thread and event loop, never leaking slots."""

from __future__ import annotations

import asyncio
import threading

import pytest

from attention_moa_graph._calls.limit import CallLimit


def test_a_slot_freed_on_one_loop_wakes_a_waiter_on_another():
    limit = CallLimit(1)
    held, acquired = threading.Event(), threading.Event()
    release = threading.Event()

    async def hold() -> None:
        async with limit:
            held.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait)

    async def wait_for_slot() -> None:
        async with limit:
            acquired.set()

    first = threading.Thread(target=asyncio.run, args=(hold(),))
    first.start()
    assert held.wait(10)
    second = threading.Thread(target=asyncio.run, args=(wait_for_slot(),))
    second.start()
    assert not acquired.wait(0.2)  # the one slot is held on the other loop
    release.set()
    assert acquired.wait(10)
    first.join(10)
    second.join(10)
    assert limit.in_use == 0


def test_a_cancelled_waiter_does_not_keep_a_slot():
    async def scenario() -> None:
        limit = CallLimit(1)
        await limit.acquire()
        waiter = asyncio.ensure_future(limit.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        limit.release()
        assert limit.in_use == 0
        # A slot handed over just as its waiter is cancelled is passed on.
        await limit.acquire()
        late = asyncio.ensure_future(limit.acquire())
        await asyncio.sleep(0)
        limit.release()  # granted to `late` ...
        late.cancel()  # ... which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await late
        assert limit.in_use == 0

    asyncio.run(scenario())


def test_waiters_are_served_first_come_first_served():
    async def scenario() -> list[int]:
        limit = CallLimit(1)
        order: list[int] = []
        await limit.acquire()

        async def take(index: int) -> None:
            async with limit:
                order.append(index)

        tasks = [asyncio.ensure_future(take(i)) for i in range(5)]
        await asyncio.sleep(0)
        limit.release()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]
