"""One model call: a timeout on both paths, and provider faults made retryable."""

from __future__ import annotations

import asyncio
import contextvars
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import RetryPolicy

from attention_moa_graph.errors import (
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
) -> BaseMessage:
    """Call the model on the sync path, giving up after `timeout` seconds.

    A blocking call cannot be cancelled: on timeout it is left to finish in its
    worker thread (its client's own timeout ends it) and the node moves on.
    """

    def attempt() -> BaseMessage:
        return model.invoke(messages, config, **kwargs)

    try:
        if timeout is None:
            return _checked(attempt())
        outcome: dict[str, Any] = {}
        done = threading.Event()
        context = contextvars.copy_context()

        def run() -> None:
            try:
                outcome["reply"] = context.run(attempt)
            except BaseException as exc:  # handed to the caller below
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="moa-model-call", daemon=True).start()
        if not done.wait(timeout):
            raise CallTimeoutError(f"no reply within {timeout:g} s")
        if "error" in outcome:
            raise outcome["error"]
        return _checked(outcome["reply"])
    except Exception as exc:
        _raise_translated(exc)


async def acall_model(
    model: BaseChatModel,
    messages: list[AnyMessage],
    config: RunnableConfig,
    kwargs: dict[str, Any],
    timeout: float | None,
) -> BaseMessage:
    """Call the model on the async path, cancelling it after `timeout` seconds."""
    try:
        reply = await asyncio.wait_for(
            model.ainvoke(messages, config, **kwargs), timeout
        )
    except asyncio.TimeoutError as exc:
        raise CallTimeoutError(f"no reply within {timeout:g} s") from exc
    except Exception as exc:
        _raise_translated(exc)
    return _checked(reply)
