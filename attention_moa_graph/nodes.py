"""The model-calling nodes of a layer, each with a sync and an async path.

Every node is a `ModelNode` with a sync and an async body so that both
`graph.invoke` and `graph.ainvoke` work. A node plans its call from its input
(pure), makes one model call tagged with the `moa_*` metadata, and writes the
reply under its agent's name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config

from attention_moa_graph.calls import (
    acall_model,
    awith_retries,
    call_model,
    with_retries,
)
from attention_moa_graph.config import MoAConfig
from attention_moa_graph.errors import (
    AgentFailedError,
    AgentsExhaustedError,
    AggregatorFailedError,
    describe,
    is_transient,
)
from attention_moa_graph.messages import (
    build_cross_attention_messages,
    build_draft_messages,
    build_refine_messages,
    build_residual_messages,
    build_self_attention_messages,
    build_summary_messages,
)
from attention_moa_graph.models import Agent
from attention_moa_graph.routing import layer_answers
from attention_moa_graph.state import (
    CallRecord,
    CritiqueTask,
    DraftTask,
    LayerState,
    RefineTask,
    Role,
)

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


def model_node(
    name: str,
    plan: Callable[[Input], ModelCall],
    write: Callable[[Input, str], Update],
    moa: MoAConfig,
    on_failure: FailureFn,
) -> ModelNode:
    """Wrap a planned model call as a node with sync and async paths.

    Attempts run inside the node, so that after the last one the node itself
    decides what a failure means (`on_failure`): drop the agent or stop.
    """
    policy, timeout = moa.retry_policy, moa.call_timeout

    def finish(task: Input, call: ModelCall, reply: BaseMessage) -> Update:
        return {**write(task, str(reply.text)), "calls": [call.record(reply)]}

    def run(task: Input, config: RunnableConfig) -> Update:
        call = plan(task)
        model = call.agent.model.get()
        run_config, kwargs = call.run_config(config), call.kwargs()
        try:
            reply = with_retries(
                policy,
                lambda: call_model(model, call.messages, run_config, kwargs, timeout),
            )
        except Exception as error:
            return on_failure(task, call, error)
        return finish(task, call, reply)

    async def arun(task: Input, config: RunnableConfig) -> Update:
        call = plan(task)
        model = call.agent.model.get()
        run_config, kwargs = call.run_config(config), call.kwargs()
        try:
            reply = await awith_retries(
                policy,
                lambda: acall_model(model, call.messages, run_config, kwargs, timeout),
            )
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


def agent_failed(task: Mapping[str, Any], call: ModelCall, error: Exception) -> Update:
    """After the last attempt: drop the agent from the layer, or stop the run.

    A transient failure drops the agent for the rest of the layer. A failure
    retrying cannot fix, or any failure of a strict second try (sent because
    too few agents were left), stops the run with a typed error.
    """
    agent = call.agent.name
    if not is_transient(error):
        raise AgentFailedError(agent, call.role, call.layer, error) from error
    failure = f"{call.role}: {describe(error)}"
    if task.get("strict"):
        raise AgentsExhaustedError(call.layer, {agent: failure}) from error
    return {"failures": {agent: failure}}


def aggregator_failed(task: Any, call: ModelCall, error: Exception) -> Update:
    """After the last attempt: the layer cannot end without this call."""
    raise AggregatorFailedError(
        call.agent.name, call.role, call.layer, error
    ) from error


def make_draft_node(config: MoAConfig) -> ModelNode:
    """Agent i drafts an answer (with the previous layer's output as reference)."""

    def plan(task: DraftTask) -> ModelCall:
        return ModelCall(
            role="draft",
            agent=config.agent_for(task["agent"], task["model"]),
            layer=task["layer"],
            messages=build_draft_messages(
                config.prompts, task["messages"], task["reference"]
            ),
            temperature=task["temperature"],
        )

    return model_node(
        "draft",
        plan,
        lambda task, text: {"drafts": {task["agent"]: text}},
        config,
        agent_failed,
    )


def _write_critique(task: CritiqueTask, text: str) -> Update:
    return {"critiques": {task["target"]: {task["critic"]: text}}}


def make_cross_attention_node(
    config: MoAConfig,
) -> ModelNode:
    """Critic j writes suggestions for agent i's draft, seeing only the two drafts."""

    def plan(task: CritiqueTask) -> ModelCall:
        return ModelCall(
            role="cross_attention",
            agent=config.agent_for(task["critic"], task["model"]),
            layer=task["layer"],
            messages=build_cross_attention_messages(
                config.prompts,
                task["messages"],
                task["own_answer"],
                task["target_answer"],
            ),
            temperature=task["temperature"],
            target=task["target"],
        )

    return model_node("cross_attention", plan, _write_critique, config, agent_failed)


def make_self_attention_node(
    config: MoAConfig,
) -> ModelNode:
    """Agent i writes suggestions for its own draft."""

    def plan(task: CritiqueTask) -> ModelCall:
        return ModelCall(
            role="self_attention",
            agent=config.agent_for(task["critic"], task["model"]),
            layer=task["layer"],
            messages=build_self_attention_messages(
                config.prompts, task["messages"], task["own_answer"]
            ),
            temperature=task["temperature"],
        )

    return model_node("self_attention", plan, _write_critique, config, agent_failed)


def make_refine_node(config: MoAConfig) -> ModelNode:
    """Agent i rewrites its draft from the suggestions addressed to it."""

    def plan(task: RefineTask) -> ModelCall:
        return ModelCall(
            role="refine",
            agent=config.agent_for(task["agent"], task["model"]),
            layer=task["layer"],
            messages=build_refine_messages(
                config.prompts, task["messages"], task["draft"], task["suggestions"]
            ),
            temperature=task["temperature"],
        )

    return model_node(
        "refine",
        plan,
        lambda task, text: {"refined": {task["agent"]: text}},
        config,
        agent_failed,
    )


def make_summarize_node(config: MoAConfig) -> ModelNode:
    """The summary agent merges the refined answers (the drafts in plain MoA)."""

    def plan(state: LayerState) -> ModelCall:
        names = state["settings"]["agents"]
        return ModelCall(
            role="summary",
            agent=config.aggregator_for(state["settings"]),
            layer=state["layer"],
            messages=build_summary_messages(
                config.prompts, state["messages"], layer_answers(state, names)
            ),
            temperature=state["settings"]["temperatures"].get("summary"),
        )

    return model_node(
        "summarize",
        plan,
        lambda state, text: {"summary": text},
        config,
        aggregator_failed,
    )


def make_residual_node(config: MoAConfig) -> ModelNode:
    """The residual agent synthesises all layer outputs so far, or says stop."""

    def plan(state: LayerState) -> ModelCall:
        settings = state["settings"]
        return ModelCall(
            role="residual",
            agent=config.residual_for(settings),
            layer=state["layer"],
            messages=build_residual_messages(
                config.prompts,
                state["messages"],
                [*state["history"], state["summary"]],
                early_stopping=settings["early_stopping"],
            ),
            temperature=settings["temperatures"].get("residual"),
        )

    return model_node(
        "residual",
        plan,
        lambda state, text: {"residual": text},
        config,
        aggregator_failed,
    )
