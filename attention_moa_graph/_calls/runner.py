"""`CallRunner`: one async implementation of a model call under a `CallPolicy`.

An attempt holds a slot of the call cap, gets the time the policy allows it
(the call timeout, cut to what a deadline leaves), may be hedged, and turns
unparseable or empty replies into retryable errors. Failed attempts are
retried after the policy's pauses. Sync callers run the same coroutine on the
package's event loop (see `loop`), so there is no second engine to keep equal
by hand. There a model is called through its sync interface in a worker
thread, unless its async client works on any loop (`models.works_on_any_loop`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, NoReturn, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, BaseMessage
from langchain_core.runnables import RunnableConfig

from attention_moa_graph._calls.errors import (
    CallTimeoutError,
    EmptyReplyError,
    MalformedReplyError,
)
from attention_moa_graph._calls.limit import CallLimit
from attention_moa_graph._calls.loop import in_thread, on_package_loop
from attention_moa_graph._calls.models import (
    model_field,
    provider_params,
    works_on_any_loop,
)
from attention_moa_graph._calls.policy import CallPolicy

T = TypeVar("T")


class _Late(Exception):
    """The deadline passed; no further attempt is made."""


async def _within(call: Awaitable[T], timeout: float | None) -> T:
    """The call's result, cancelled after `timeout` seconds.

    On Python 3.11 `asyncio.wait_for` runs the call in a task of its own,
    one more task and hand-over per model call; `asyncio.timeout` runs it in
    the caller's task (and is what `wait_for` itself uses from 3.12 on).
    """
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await call
    return await asyncio.wait_for(call, timeout)


def _checked(reply: BaseMessage) -> BaseMessage:
    if not str(reply.text).strip() and not getattr(reply, "tool_calls", None):
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


async def acall_model(
    model: BaseChatModel,
    messages: list[AnyMessage],
    config: RunnableConfig,
    params: dict[str, Any],
    timeout: float | None,
    hedge_after: float | None = None,
    clean: Callable[[str], str] | None = None,
) -> BaseMessage:
    """One attempt: the reply, cancelled after `timeout` seconds.

    With `hedge_after`, a call still unanswered after that many seconds is
    sent a second time and the first reply wins (a hedged request). `clean`
    rewrites the reply's text first; nothing left is an empty reply.
    """
    params = provider_params(model, params)

    def request() -> Awaitable[BaseMessage]:
        # A sync caller's call (see `loop`), unless the model's async client
        # works on this loop too.
        if on_package_loop() and not works_on_any_loop(model):
            return in_thread(model.invoke, messages, config, **params)
        return model.ainvoke(messages, config, **params)

    try:
        reply = await _within(
            request() if hedge_after is None else _hedged(request, hedge_after),
            timeout,
        )
    except asyncio.TimeoutError as exc:
        raise CallTimeoutError(f"no reply within {timeout:g} s") from exc
    except Exception as exc:
        _raise_translated(exc)
    if clean is not None:
        text = str(reply.text)
        cleaned = clean(text)
        if cleaned != text:
            reply = reply.model_copy(update={"content": cleaned})
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
        if tasks:
            # Let the cancellations land, so that no request outlives its call
            # (and the call's slot of the cap); a twin deaf to them is left.
            await asyncio.wait(tasks, timeout=1.0)


def _with_next_seeds(
    model: BaseChatModel, params: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """The call's parameters for each try: a seeded model gets a new seed each time.

    With a fixed seed the same prompt gets the same reply, so a retry after
    an empty or malformed reply would fail the same way (a local agent
    `local:smollm2@1` does exactly that).
    """
    seed = params.get("seed", model_field(model, "seed"))
    if not isinstance(seed, int):
        return itertools.repeat(params)
    later = ({**params, "seed": seed + n} for n in itertools.count(1))
    return itertools.chain([params], later)


class CallRunner:
    """Makes model calls under one `CallPolicy`, sharing its call cap."""

    def __init__(self, policy: CallPolicy) -> None:
        """Follow `policy`; its `max_concurrent_calls` cap is shared by every call."""
        self.policy = policy
        size = policy.max_concurrent_calls
        self.limit = CallLimit(size) if size is not None else None

    def _slot(self) -> AbstractAsyncContextManager[Any]:
        return self.limit if self.limit is not None else nullcontext()

    async def call(
        self,
        model: BaseChatModel,
        messages: list[AnyMessage],
        config: RunnableConfig,
        params: dict[str, Any],
        deadline: float | None = None,
        clean: Callable[[str], str] | None = None,
    ) -> BaseMessage | None:
        """The reply, or None if `deadline` seconds passed before one arrived.

        The deadline covers every attempt and the pauses between them, and time
        spent waiting for a slot of the cap. When the attempts run out, the
        last failure is raised.
        """
        started = time.monotonic()
        pauses = self.policy.pauses()
        tries = _with_next_seeds(model, params)

        def elapsed() -> float:
            return time.monotonic() - started

        while True:
            try:
                async with self._slot():
                    budget = self.policy.budget(elapsed(), deadline)
                    if budget is not None and budget <= 0:
                        raise _Late
                    try:
                        return await acall_model(
                            model,
                            messages,
                            config,
                            next(tries),
                            budget,
                            self.policy.hedge_after,
                            clean,
                        )
                    except CallTimeoutError:
                        if deadline is not None and elapsed() >= deadline:
                            raise _Late from None
                        raise
            except _Late:
                return None
            except Exception as error:
                pause = next(pauses, None) if self.policy.retryable(error) else None
                if pause is None:
                    raise
                if deadline is not None and elapsed() + pause >= deadline:
                    return None
                await asyncio.sleep(pause)
