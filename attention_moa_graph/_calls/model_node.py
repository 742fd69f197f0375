"""One planned model call, and the graph node that makes it through a `CallRunner`.

`model_node` turns a plan (task -> `ModelCall`) and a writer (task, reply ->
state update) into a `ModelNode`. The call is tagged with the `moa_*` run
metadata; the runner applies retries, timeouts, hedging and the deadline
inside the node, so that the node itself decides what a failure means after
the last attempt (`on_failure`) and what a late call means (`on_late`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config

from attention_moa_graph._calls.loop import run_sync
from attention_moa_graph._calls.models import Agent
from attention_moa_graph._calls.runner import CallRunner
from attention_moa_graph._calls.usage import CallRecord

Input = TypeVar("Input", bound=Mapping[str, Any])
Update = dict[str, Any]


@dataclass(frozen=True)
class ModelCall:
    """One planned model call: who makes it, in which role, with what prompt."""

    role: str
    agent: Agent
    layer: int
    messages: list[AnyMessage]
    params: Mapping[str, Any] = field(default_factory=dict)
    """Call-time model parameters (temperature, the token cap, ...)."""
    target: str | None = None
    final: bool = False
    """Whether this call's reply is the run's answer (`moa_final` metadata)."""

    def metadata(self) -> dict[str, Any]:
        """The `moa_*` run metadata that callbacks and LangSmith see."""
        metadata: dict[str, Any] = {
            "moa_layer": self.layer,
            "moa_role": self.role,
            "moa_agent": self.agent.name,
        }
        if self.target is not None:
            metadata["moa_target"] = self.target
        if self.final:
            metadata["moa_final"] = True
        return metadata

    def run_config(self, config: RunnableConfig) -> RunnableConfig:
        """The node's config plus this call's metadata and run name."""
        name = f"{self.role}:{self.agent.name}"
        if self.target is not None:
            name += f"->{self.target}"
        metadata = {**(config.get("metadata") or {}), **self.metadata()}
        return {**config, "metadata": metadata, "run_name": name}

    @property
    def output(self) -> str:
        """Which output the call writes: `role:agent`, `role:critic->target`."""
        name = f"{self.role}:{self.agent.name}"
        return f"{name}->{self.target}" if self.target is not None else name

    def record(self, reply: BaseMessage, flags: list[str] | None = None) -> CallRecord:
        """What the call cost, for the usage report, and what the guards saw."""
        usage = reply.usage_metadata if isinstance(reply, AIMessage) else None
        details = usage.get("input_token_details") or {} if usage else {}
        return CallRecord(
            role=self.role,
            agent=self.agent.name,
            model=self.agent.model.label,
            input_tokens=usage["input_tokens"] if usage else 0,
            output_tokens=usage["output_tokens"] if usage else 0,
            total_tokens=usage["total_tokens"] if usage else 0,
            cached_input_tokens=int(details.get("cache_read") or 0),
            output=self.output,
            flags=flags or [],
        )


FailureFn = Callable[[Any, ModelCall, Exception], Update]
LateFn = Callable[[Any, ModelCall], Update]


def model_node(
    name: str,
    plan: Callable[[Input], ModelCall],
    write: Callable[[Input, str], Update],
    runner: CallRunner,
    on_failure: FailureFn,
    *,
    deadline: float | None = None,
    on_late: LateFn | None = None,
    clean: Callable[[str, Input], str] | None = None,
    text_of: Callable[[BaseMessage], str] | None = None,
    guard: Callable[[BaseMessage, str], tuple[str, list[str]]] | None = None,
) -> ModelNode:
    """Wrap a planned model call as a node.

    With a `deadline` (seconds for all attempts together), a call still
    unanswered by then ends the node through `on_late`; a strict second try
    (a task with `strict` set) must answer, so it waits without one. `clean`
    rewrites each reply's text, given the node's input too, before it is
    written (a reply it empties is retried as an empty reply); `text_of`
    turns the reply into the text
    written (default: its text), e.g. with its tool calls written out.
    `guard` gets the reply and that text, and returns the text to write and
    what it found (flags for the layer's record).
    """

    async def arun(task: Input, config: RunnableConfig) -> Update:
        call = plan(task)
        cut = None if task.get("strict") else deadline
        try:
            reply = await runner.call(
                call.agent.model.get(),
                call.messages,
                call.run_config(config),
                dict(call.params),
                cut,
                None if clean is None else functools.partial(_clean_for, clean, task),
            )
        except Exception as error:
            return on_failure(task, call, error)
        if reply is None:
            assert on_late is not None, "a node with a deadline needs on_late"
            return on_late(task, call)
        text = text_of(reply) if text_of is not None else str(reply.text)
        flags: list[str] = []
        if guard is not None:
            text, flags = guard(reply, text)
        return {**write(task, text), "calls": [call.record(reply, flags)]}

    return ModelNode(name, arun)


def _clean_for(clean: Callable[[str, Input], str], task: Input, text: str) -> str:
    return clean(text, task)


class ModelNode(Runnable[Any, Update]):
    """A node whose sync path runs its async body on the package's event loop.

    It opens no run of its own in traces (`RunnableLambda` would, around each
    model call, and inspects its function on every call); the model call's
    own run nests under the layer's run.
    """

    def __init__(self, name: str, arun: Callable[[Any, RunnableConfig], Any]) -> None:
        """Wrap the async body."""
        self.name = name
        self._arun = arun

    def invoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Update:
        """Run the body on the package's loop and wait for it."""
        result: Update = run_sync(self._arun(input, ensure_config(config)))
        return result

    async def ainvoke(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Update:
        """Run the body."""
        result: Update = await self._arun(
            input, config if config is not None else ensure_config()
        )
        return result
