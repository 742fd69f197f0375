"""One planned model call, and the node that makes it with retries and deadlines.

`model_node` turns a plan (task -> `ModelCall`) and a writer (task, reply ->
state update) into a `ModelNode` with a sync and an async body. The call is
tagged with the `moa_*` metadata; retries, the call timeout, hedged requests
and an optional deadline are applied inside the node, so that the node itself
decides what a failure means after the last attempt.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config

from attention_moa_graph._calls.errors import CallTimeoutError
from attention_moa_graph._calls.models import Agent
from attention_moa_graph._calls.runner import (
    acall_model,
    awith_retries,
    call_model,
    with_retries,
)
from attention_moa_graph._core.config import MoAConfig
from attention_moa_graph._core.state import CallRecord, Role

Input = TypeVar("Input", bound=Mapping[str, Any])
Update = dict[str, Any]


@dataclass(frozen=True)
class ModelCall:
    """One planned model call: who makes it, in which role, with what prompt."""

    role: Role
    agent: Agent
    layer: int
    messages: list[AnyMessage]
    temperature: float | None = None
    target: str | None = None

    def metadata(self) -> dict[str, Any]:
        """The `moa_*` run metadata that callbacks and LangSmith see."""
        metadata: dict[str, Any] = {
            "moa_layer": self.layer,
            "moa_role": self.role,
            "moa_agent": self.agent.name,
        }
        if self.target is not None:
            metadata["moa_target"] = self.target
        return metadata

    def run_config(self, config: RunnableConfig) -> RunnableConfig:
        """The node's config plus this call's metadata and run name."""
        name = f"{self.role}:{self.agent.name}"
        if self.target is not None:
            name += f"->{self.target}"
        metadata = {**(config.get("metadata") or {}), **self.metadata()}
        return {**config, "metadata": metadata, "run_name": name}

    def kwargs(self) -> dict[str, Any]:
        """Call-time model parameters."""
        return {} if self.temperature is None else {"temperature": self.temperature}

    def record(self, reply: BaseMessage) -> CallRecord:
        """What the call cost, for the usage report."""
        usage = reply.usage_metadata if isinstance(reply, AIMessage) else None
        return CallRecord(
            role=self.role,
            agent=self.agent.name,
            model=self.agent.model.label,
            input_tokens=usage["input_tokens"] if usage else 0,
            output_tokens=usage["output_tokens"] if usage else 0,
            total_tokens=usage["total_tokens"] if usage else 0,
        )


FailureFn = Callable[[Any, ModelCall, Exception], Update]
LateFn = Callable[[Any, ModelCall], Update]


class DeadlinePassed(BaseException):
    """A call ran past its stage deadline.

    A BaseException so that retry loops, which catch `Exception`, let it
    through at once instead of pausing and trying again.
    """


def model_node(
    name: str,
    plan: Callable[[Input], ModelCall],
    write: Callable[[Input, str], Update],
    moa: MoAConfig,
    on_failure: FailureFn,
    *,
    deadline: float | None = None,
    on_late: LateFn | None = None,
) -> ModelNode:
    """Wrap a planned model call as a node with sync and async paths.

    Attempts run inside the node, so that after the last one the node itself
    decides what a failure means (`on_failure`): drop the agent or stop.
    With a `deadline` (seconds for all attempts together), a call still
    unanswered by then ends the node through `on_late` instead; a strict
    second try (a task with `strict` set) waits without one.
    """
    policy, timeout, hedge = moa.retry_policy, moa.call_timeout, moa.hedge_after
    cap = moa.call_limit

    def finish(task: Input, call: ModelCall, reply: BaseMessage) -> Update:
        return {**write(task, str(reply.text)), "calls": [call.record(reply)]}

    def cutoff(task: Input) -> float | None:
        """The task's deadline; a strict second try must answer, so it has none."""
        return None if task.get("strict") else deadline

    def budget(started: float, cut: float | None) -> float | None:
        """This attempt's timeout: the call timeout, cut to what the deadline leaves.

        Taken once the call holds its `max_concurrent_calls` slot, so that time
        spent waiting for one counts against the deadline too.
        """
        if cut is None:
            return timeout
        left = cut - (time.monotonic() - started)
        if left <= 0:
            raise DeadlinePassed
        return left if timeout is None else min(timeout, left)

    def late(started: float, cut: float | None) -> bool:
        return cut is not None and time.monotonic() - started >= cut

    def run(task: Input, config: RunnableConfig) -> Update:
        call = plan(task)
        model = call.agent.model.get()
        run_config, kwargs = call.run_config(config), call.kwargs()
        started, cut = time.monotonic(), cutoff(task)

        def attempt() -> BaseMessage:
            try:
                with cap.blocking() if cap else nullcontext():
                    limit = budget(started, cut)
                    return call_model(
                        model, call.messages, run_config, kwargs, limit, hedge
                    )
            except CallTimeoutError:
                if late(started, cut):
                    raise DeadlinePassed from None
                raise

        try:
            reply = with_retries(policy, attempt)
        except DeadlinePassed:
            assert on_late is not None
            return on_late(task, call)
        except Exception as error:
            return on_failure(task, call, error)
        return finish(task, call, reply)

    async def arun(task: Input, config: RunnableConfig) -> Update:
        call = plan(task)
        model = call.agent.model.get()
        run_config, kwargs = call.run_config(config), call.kwargs()
        started, cut = time.monotonic(), cutoff(task)

        async def attempt() -> BaseMessage:
            try:
                async with cap.awaitable() if cap else nullcontext():
                    limit = budget(started, cut)
                    return await acall_model(
                        model, call.messages, run_config, kwargs, limit, hedge
                    )
            except CallTimeoutError:
                if late(started, cut):
                    raise DeadlinePassed from None
                raise

        try:
            reply = await awith_retries(policy, attempt)
        except DeadlinePassed:
            assert on_late is not None
            return on_late(task, call)
        except Exception as error:
            return on_failure(task, call, error)
        return finish(task, call, reply)

    return ModelNode(name, run, arun)


class ModelNode(Runnable[Any, Update]):
    """A node with a sync and an async body and no run of its own in traces.

    `RunnableLambda` would also work, but it inspects its function's signature
    on every call and opens a chain run around each model call; in the
    overhead benchmark that was a large share of the graph's cost per call.
    The model call's own run still nests under the layer's run.
    """

    def __init__(
        self,
        name: str,
        run: Callable[[Any, RunnableConfig], Update],
        arun: Callable[[Any, RunnableConfig], Awaitable[Update]],
    ) -> None:
        """Wrap the two bodies."""
        self.name = name
        self._run = run
        self._arun = arun

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Update:
        """Run the sync body."""
        return self._run(input, config if config is not None else ensure_config())

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Update:
        """Run the async body."""
        return await self._arun(
            input, config if config is not None else ensure_config()
        )
