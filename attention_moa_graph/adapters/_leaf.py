"""The ensemble as one model to its caller: what its inner runs inherit.

A chat model is a leaf of its caller's chain or agent. The ensemble runs a
graph of model calls inside, so it decides what of the caller's run reaches
them: tracers follow it inside, nothing else does, and the graph starts
without the caller's ambient config.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TypeVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tracers import BaseTracer


@contextmanager
def detached() -> Iterator[None]:
    """Start the graph with no ambient runnable config.

    A caller's chain or agent node leaves its config in a context variable,
    which LangGraph would merge into the graph's: its callbacks would see
    every inner call, and inside an agent the ensemble would run as the
    agent's subgraph, saving its steps in the agent's thread. As a chat model
    the ensemble is a leaf; its own run decides what follows it inside
    (`children_of`).
    """
    token = var_child_runnable_config.set(None)
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


def children_of(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> CallbackManager | None:
    """Callbacks that nest the graph's runs under this model's run in traces.

    Only tracers (LangSmith's, and any `BaseTracer`) follow the ensemble
    inside: to every other handler (a usage counter, `astream_events`, an
    agent's message stream) it is one model call, as for any chat model, so
    its tokens and usage are not counted twice.
    """
    if run_manager is None:
        return None
    tracers: list[BaseCallbackHandler] = [
        h for h in run_manager.inheritable_handlers if isinstance(h, BaseTracer)
    ]
    return CallbackManager(
        handlers=tracers,
        inheritable_handlers=tracers,
        parent_run_id=run_manager.run_id,
        tags=list(run_manager.inheritable_tags),
        inheritable_tags=list(run_manager.inheritable_tags),
        metadata=dict(run_manager.inheritable_metadata),
        inheritable_metadata=dict(run_manager.inheritable_metadata),
    )


T = TypeVar("T")


async def prepend(first: T, rest: AsyncIterator[T]) -> AsyncIterator[T]:
    """`first`, then the items of `rest`."""
    yield first
    async for item in rest:
        yield item
