"""The model-calling nodes of a layer, each with a sync and an async path.

Every node is a `ModelNode` with a sync and an async body so that both
`graph.invoke` and `graph.ainvoke` work. A node plans its call from its input
(pure), makes one model call tagged with the `moa_*` metadata, and writes the
reply under its agent's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from attention_moa_graph._calls.errors import (
    AgentFailedError,
    AgentsExhaustedError,
    AggregatorFailedError,
    describe,
    is_transient,
)
from attention_moa_graph._calls.node import (
    LateFn,
    ModelCall,
    ModelNode,
    Update,
    model_node,
)
from attention_moa_graph._core.config import MoAConfig
from attention_moa_graph._core.messages import (
    build_batched_critique_messages,
    build_cross_attention_messages,
    build_draft_messages,
    build_refine_messages,
    build_residual_messages,
    build_self_attention_messages,
    build_summary_messages,
    split_batched_critique,
)
from attention_moa_graph._core.routing import layer_answers
from attention_moa_graph._core.state import (
    BatchedCritiqueTask,
    CritiqueTask,
    DraftTask,
    LayerState,
    RefineTask,
    critique_key,
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


def _agent_late(task: DraftTask | RefineTask, call: ModelCall) -> Update:
    """Past the stage deadline: record which of the agent's stages was late.

    A late draft keeps the agent out of the layer; after a late refinement
    the summary merges the agent's draft.
    """
    return {"late_agents": {task["agent"]: call.role}}


def _proposer_node(
    name: str,
    plan: Callable[[Any], ModelCall],
    write: Callable[[Any, str], Update],
    late: LateFn,
    deadline: float | None,
    config: MoAConfig,
) -> ModelNode:
    """A node of a proposer's stage: a failed agent is dropped from the layer.

    Past `deadline` the call ends through `late`: drafts and refinements use
    the stage deadline, critiques their own (else the stage deadline).
    """
    return model_node(
        name, plan, write, config, agent_failed, deadline=deadline, on_late=late
    )


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

    return _proposer_node(
        "draft",
        plan,
        lambda task, text: {"drafts": {task["agent"]: text}},
        _agent_late,
        config.stage_deadline,
        config,
    )


def _write_critique(task: CritiqueTask, text: str) -> Update:
    return {"critiques": {task["target"]: {task["critic"]: text}}}


def _critique_late(task: CritiqueTask, call: ModelCall) -> Update:
    """Past the critique deadline: the target refines without this critique."""
    return {"late": [critique_key(task["critic"], task["target"])]}


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

    return _proposer_node(
        "cross_attention",
        plan,
        _write_critique,
        _critique_late,
        config.critique_cutoff,
        config,
    )


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

    return _proposer_node(
        "self_attention",
        plan,
        _write_critique,
        _critique_late,
        config.critique_cutoff,
        config,
    )


def make_batched_critique_node(config: MoAConfig) -> ModelNode:
    """Critic j reviews every draft addressed to it in one call (batched mode)."""

    def plan(task: BatchedCritiqueTask) -> ModelCall:
        return ModelCall(
            role="critique",
            agent=config.agent_for(task["critic"], task["model"]),
            layer=task["layer"],
            messages=build_batched_critique_messages(
                config.prompts,
                task["messages"],
                task["own_answer"],
                [
                    (answer, target == task["critic"])
                    for target, answer in zip(
                        task["targets"], task["target_answers"], strict=True
                    )
                ],
            ),
            temperature=task["temperature"],
        )

    def write(task: BatchedCritiqueTask, text: str) -> Update:
        sections = split_batched_critique(text, len(task["targets"]))
        return {
            "critiques": {
                target: {task["critic"]: section}
                for target, section in zip(task["targets"], sections, strict=True)
            }
        }

    def late(task: BatchedCritiqueTask, call: ModelCall) -> Update:
        return {"late": [critique_key(task["critic"], t) for t in task["targets"]]}

    return _proposer_node("critique", plan, write, late, config.critique_cutoff, config)


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

    return _proposer_node(
        "refine",
        plan,
        lambda task, text: {"refined": {task["agent"]: text}},
        _agent_late,
        config.stage_deadline,
        config,
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
