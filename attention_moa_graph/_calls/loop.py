"""The package's own event loop, on which every model call runs.

Model calls have one implementation, and it is async. Every call, whoever
makes it, runs on this one long-lived loop: a synchronous caller
(`graph.invoke`, a sync chat-model call, a server's thread) hands it its
coroutine and waits; an async caller on another loop awaits the result
(`on_package_loop`). HTTP clients bound to the loop that first used them, and
their connection pools, are then shared by every run instead of breaking when
a second loop touches them (langchain-openai shares one async client per
endpoint across the whole process). The loop runs in a daemon thread, started
on first use and again after a fork.

Callbacks of a model call run on this loop's thread. LangGraph's stream
handlers and LangSmith's tracer are thread-safe; an async callback handler
of your own that holds objects of your event loop must be too.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import queue
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class _PackageLoop:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        """The loop, started on first use."""
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(
                    target=serve, name="attention-moa-loop", daemon=True
                )
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Start `coroutine` on the loop, in a copy of the caller's context."""
        loop = self.get()
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError(
                "a synchronous call was made from the package's own event loop, "
                "where it would wait for itself forever; call the async method "
                "(ainvoke, astream) from async code."
            )
        # The task is created in a callback, which runs in a copy of this
        # thread's context: context variables (run config, tracing) carry over.
        return asyncio.run_coroutine_threadsafe(coroutine, loop)

    def reset(self) -> None:
        """Forget the loop (in a forked child, where its thread does not exist)."""
        self._lock = threading.Lock()
        self._loop = self._thread = None

    def stop(self) -> None:
        """Stop the loop at interpreter exit."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)


_LOOP = _PackageLoop()
atexit.register(_LOOP.stop)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_LOOP.reset)


async def on_package_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Await `coroutine` run on the package's loop (directly when already on it).

    Cancelling the awaiting task cancels the coroutine there too.
    """
    loop = asyncio.get_running_loop()
    if loop is _LOOP.get():
        return await coroutine
    return await asyncio.wrap_future(_LOOP.submit(coroutine))


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on the package's loop and wait for its result.

    If the waiting thread is interrupted (Ctrl-C), the coroutine is cancelled.
    """
    future = _LOOP.submit(coroutine)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


def iterate_sync(items: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from synchronous code, via the package's loop.

    Items are handed over through a queue, so the loop never waits for the
    consumer. Closing the returned iterator early cancels the async one.
    """
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue()

    async def pump() -> None:
        try:
            async for item in items:
                handoff.put(("item", item))
        except BaseException as error:  # handed to the consumer's thread
            handoff.put(("error", error))
            if not isinstance(error, Exception):
                raise
        else:
            handoff.put(("end", None))

    future = _LOOP.submit(pump())
    try:
        while True:
            kind, value = handoff.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        future.cancel()
