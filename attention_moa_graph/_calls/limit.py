"""`CallLimit`: at most N model calls in flight, whatever thread or loop makes them.

An `asyncio.Semaphore` belongs to one event loop, so a cap built from them
holds per loop only: two threads each running `asyncio.run(graph.ainvoke(...))`
would each get the whole cap. This limit keeps its count under a thread lock
and hands a freed slot to the longest waiter, on whichever loop it waits.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from types import TracebackType


class _Waiter:
    __slots__ = ("future", "granted", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.granted = False


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class CallLimit:
    """At most `size` holders at once, across threads and event loops (FIFO).

    Use it as `async with limit:` around one model call.
    """

    def __init__(self, size: int) -> None:
        """Allow `size` calls at once."""
        self.size = size
        self._free = size
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        """Slots held right now."""
        with self._lock:
            return self.size - self._free

    async def acquire(self) -> None:
        """Wait for a slot."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            waiter = _Waiter(loop)
            self._waiters.append(waiter)
        try:
            await waiter.future
        except BaseException:
            with self._lock:
                granted = waiter.granted
                if not granted:
                    self._waiters.remove(waiter)
            if granted:  # the slot arrived as the wait was cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        """Free a slot, handing it to the longest waiter if there is one."""
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                try:
                    waiter.loop.call_soon_threadsafe(_wake, waiter.future)
                except RuntimeError:  # its loop has closed: nobody to wake
                    continue
                waiter.granted = True
                return
            self._free += 1

    async def __aenter__(self) -> None:
        """Hold a slot for the block."""
        await self.acquire()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Free the slot."""
        self.release()
