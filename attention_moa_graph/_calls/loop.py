"""The package's own event loop, which runs the model calls of sync callers.

Model calls have one implementation, and it is async (`runner.CallRunner`).
A synchronous caller (`graph.invoke`, a sync chat-model call or stream, a
server's thread) hands its coroutine to this one long-lived loop and waits,
instead of starting an event loop of its own per request; the call cap, the
timers and the thread pool are then shared by every sync run. Calls an async
caller makes stay on the caller's loop.

On this loop a model is called through its sync interface in a worker thread,
not its async one: chat-model integrations share async HTTP clients
process-wide (langchain-openai keeps one per endpoint), and such a client
fails once a second event loop uses it. Models on the package's transport
are the exception (`models.works_on_any_loop`): it keeps a connection pool
per loop, so their calls stay on this loop, with no thread per call. The loop
runs in a daemon thread, started on first use and again after a fork; at
exit it closes its async generators, and with them its connection pool.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import functools
import os
import queue
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

T = TypeVar("T")


class _DaemonThreads(Executor):
    """A daemon thread per task: a call that hangs never holds up interpreter exit.

    (A `ThreadPoolExecutor` joins its threads at exit, so one call stuck on a
    dead connection would keep the process alive until its client gives up.)
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:  # handed to the awaiting coroutine
                future.set_exception(error)

        threading.Thread(target=run, name="moa-call", daemon=True).start()
        return future


_THREADS = _DaemonThreads()


async def in_thread(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking function in a daemon thread, in a copy of this context."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_THREADS, call)


class _PackageLoop:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop, if it has started."""
        return self._loop

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
                    # Stopped at exit: close what closes with the loop (the
                    # transport's pool), without waiting on calls in flight.
                    closing = asyncio.wait_for(loop.shutdown_asyncgens(), 2)
                    with contextlib.suppress(Exception):
                        loop.run_until_complete(closing)

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


def on_package_loop() -> bool:
    """Whether the running event loop is the package's own."""
    try:
        return asyncio.get_running_loop() is _LOOP.loop
    except RuntimeError:
        return False


def start_on_loop(coroutine: Coroutine[Any, Any, T]) -> Future[T]:
    """Start `coroutine` on the package's loop (a long-lived server's home)."""
    return _LOOP.submit(coroutine)


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
