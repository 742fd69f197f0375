"""One model call: a timeout on both paths, and provider faults made retryable."""

from __future__ import annotations

import asyncio
import contextvars
import json
import queue
import random
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import RetryPolicy

from attention_moa_graph._calls.errors import (
    CallTimeoutError,
    EmptyReplyError,
    MalformedReplyError,
)

T = TypeVar("T")


def _retryable(policy: RetryPolicy, error: Exception) -> bool:
    retry_on = policy.retry_on
    if isinstance(retry_on, type):
        return isinstance(error, retry_on)
    if isinstance(retry_on, Sequence):
        return isinstance(error, tuple(retry_on))
    return bool(retry_on(error))


def _pauses(policy: RetryPolicy) -> Iterator[float]:
    """Seconds to wait before each retry: exponential, capped, optionally jittered."""
    interval = policy.initial_interval
    for _ in range(policy.max_attempts - 1):
        pause = min(interval, policy.max_interval)
        yield pause + (random.uniform(0, pause) if policy.jitter else 0.0)
        interval *= policy.backoff_factor


def with_retries(policy: RetryPolicy | None, attempt: Callable[[], T]) -> T:
    """Run `attempt`, retrying retryable failures as the policy says."""
    pauses = _pauses(policy) if policy else iter(())
    while True:
        try:
            return attempt()
        except Exception as error:
            pause = next(pauses, None) if policy and _retryable(policy, error) else None
            if pause is None:
                raise
            time.sleep(pause)


async def awith_retries(
    policy: RetryPolicy | None, attempt: Callable[[], Awaitable[T]]
) -> T:
    """The async twin of `with_retries`."""
    pauses = _pauses(policy) if policy else iter(())
    while True:
        try:
            return await attempt()
        except Exception as error:
            pause = next(pauses, None) if policy and _retryable(policy, error) else None
            if pause is None:
                raise
            await asyncio.sleep(pause)


def _checked(reply: BaseMessage) -> BaseMessage:
    if not str(reply.text).strip():
        raise EmptyReplyError("the model replied with no text")
    return reply


def _raise_translated(error: Exception) -> NoReturn:
    """Re-raise a failed call's error; unparseable responses become retryable."""
    if isinstance(error, json.JSONDecodeError) or (
        # langchain-core's wording when a stream ends without a single chunk.
        isinstance(error, ValueError) and "No generations found" in str(error)
    ):
        raise MalformedReplyError(f"unparseable response: {error}") from error
    raise error


def call_model(
    model: BaseChatModel,
    messages: list[AnyMessage],
    config: RunnableConfig,
    kwargs: dict[str, Any],
    timeout: float | None,
    hedge_after: float | None = None,
) -> BaseMessage:
    """Call the model on the sync path, giving up after `timeout` seconds.

    A blocking call cannot be cancelled: on timeout, or when a hedged twin
    answered first, it is left to finish in its worker thread (its client's
    own timeout ends it) and the node moves on.
    """

    def attempt() -> BaseMessage:
        return model.invoke(messages, config, **kwargs)

    try:
        if timeout is None and hedge_after is None:
            return _checked(attempt())
        return _checked(_in_threads(attempt, timeout, hedge_after))
    except Exception as exc:
        _raise_translated(exc)


def _in_threads(
    attempt: Callable[[], BaseMessage], timeout: float | None, hedge_after: float | None
) -> BaseMessage:
    """The first reply of `attempt` run in worker threads (a second one if slow)."""
    outcomes: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
    context = contextvars.copy_context()

    def start() -> None:
        copy = context.copy()  # one context cannot run in two threads at once

        def run() -> None:
            try:
                outcomes.put((True, copy.run(attempt)))
            except BaseException as exc:  # handed to the caller below
                outcomes.put((False, exc))

        threading.Thread(target=run, name="moa-model-call", daemon=True).start()

    started = time.monotonic()
    start()
    running, hedge = 1, hedge_after
    while True:
        elapsed = time.monotonic() - started
        waits = [t - elapsed for t in (timeout, hedge) if t is not None]
        try:
            ok, value = outcomes.get(timeout=max(0.0, min(waits)))
        except queue.Empty:
            if hedge is not None and time.monotonic() - started >= hedge:
                start()
                running, hedge = running + 1, None
                continue
            raise CallTimeoutError(f"no reply within {timeout:g} s") from None
        running -= 1
        if ok:
            return cast(BaseMessage, value)
        if running == 0:
            raise value


async def acall_model(
    model: BaseChatModel,
    messages: list[AnyMessage],
    config: RunnableConfig,
    kwargs: dict[str, Any],
    timeout: float | None,
    hedge_after: float | None = None,
) -> BaseMessage:
    """Call the model on the async path, cancelling it after `timeout` seconds.

    With `hedge_after`, a call still unanswered after that many seconds is
    sent a second time and the first reply wins (a hedged request).
    """

    def request() -> Awaitable[BaseMessage]:
        return model.ainvoke(messages, config, **kwargs)

    try:
        reply = await asyncio.wait_for(
            request() if hedge_after is None else _hedged(request, hedge_after),
            timeout,
        )
    except asyncio.TimeoutError as exc:
        raise CallTimeoutError(f"no reply within {timeout:g} s") from exc
    except Exception as exc:
        _raise_translated(exc)
    return _checked(reply)


async def _hedged(
    request: Callable[[], Awaitable[BaseMessage]], after: float
) -> BaseMessage:
    """The first successful reply of `request`, sent again if slower than `after`."""
    tasks = {asyncio.ensure_future(request())}
    try:
        done, _ = await asyncio.wait(tasks, timeout=after)
        if not done:
            tasks.add(asyncio.ensure_future(request()))
        error: BaseException | None = None
        while tasks:
            done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is None:
                    return task.result()
                error = error or task.exception()
        assert error is not None
        raise error
    finally:
        for task in tasks:  # the slower twin, or both when cancelled
            task.cancel()


class CallLimit:
    """At most `size` model calls in flight at once, across every run of a graph.

    An application that serves many users from one graph shares one provider
    account; a cap here keeps the calls beyond it waiting in the graph rather
    than queued inside the HTTP client (whose pool scans every waiting
    request on each change, which costs more CPU the longer the queue).
    Async runs share one semaphore per event loop; sync runs share another.
    """

    def __init__(self, size: int) -> None:
        """Allow `size` calls at once."""
        self.size = size
        self._sync = threading.BoundedSemaphore(size)
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Semaphore
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def blocking(self) -> threading.BoundedSemaphore:
        """The semaphore of the sync path."""
        return self._sync

    def awaitable(self) -> asyncio.Semaphore:
        """The semaphore of the running event loop's async calls."""
        loop = asyncio.get_running_loop()
        with self._lock:
            semaphore = self._async.get(loop)
            if semaphore is None:
                semaphore = self._async[loop] = asyncio.Semaphore(self.size)
        return semaphore
