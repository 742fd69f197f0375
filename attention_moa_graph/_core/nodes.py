"""The model-calling nodes of a layer: draft, refine, summarize and residual.

A node plans its call from its input (pure), makes it through the graph's
`CallRunner` tagged with the `moa_*` metadata, and writes the reply, without
any fence tag it echoed, under its agent's name. The critique nodes are in
`critiques`, one strategy each.
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
from attention_moa_graph._calls.models import json_reply_params
from attention_moa_graph._calls.node import (
    LateFn,
    ModelCall,
    ModelNode,
    Update,
    model_node,
)
from attention_moa_graph._core.config import MoAConfig
from attention_moa_graph._core.messages import (
    build_draft_messages,
    build_refine_messages,
    build_residual_messages,
    build_summary_messages,
    build_verdict_messages,
    strip_fences,
)
from attention_moa_graph._core.routing import layer_answers, residual_runs
from attention_moa_graph._core.state import DraftTask, LayerState, RefineTask
from attention_moa_graph._core.stop import VERDICT_SCHEMA


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


def proposer_node(
    name: str,
    stage: str,
    plan: Callable[[Any], ModelCall],
    write: Callable[[Any, str], Update],
    late: LateFn,
    config: MoAConfig,
) -> ModelNode:
    """A node of a proposer's stage: a failed agent is dropped from the layer.

    Past the stage's deadline (see `CallPolicy.deadline`) the call ends
    through `late`.
    """
    return model_node(
        name,
        plan,
        write,
        config.runner,
        agent_failed,
        deadline=config.options.calls.deadline(stage),
        on_late=late,
        clean=strip_fences,
    )


def _agent_late(task: DraftTask | RefineTask, call: ModelCall) -> Update:
    """Past the stage deadline: record which of the agent's stages was late.

    A late draft keeps the agent out of the layer; after a late refinement
    the summary merges the agent's draft.
    """
    return {"late_agents": {task["agent"]: call.role}}


def make_draft_node(config: MoAConfig) -> ModelNode:
    """Agent i drafts an answer (with the previous layer's output as reference)."""

    def plan(task: DraftTask) -> ModelCall:
        return ModelCall(
            role="draft",
            agent=config.agent_for(task["agent"], task["model"]),
            layer=task["layer"],
            messages=build_draft_messages(
                config.options.prompts, task["messages"], task["reference"]
            ),
            params=task["params"],
        )

    return proposer_node(
        "draft",
        "draft",
        plan,
        lambda task, text: {"drafts": {task["agent"]: text}},
        _agent_late,
        config,
    )


def make_refine_node(config: MoAConfig) -> ModelNode:
    """Agent i rewrites its draft from the suggestions addressed to it."""

    def plan(task: RefineTask) -> ModelCall:
        return ModelCall(
            role="refine",
            agent=config.agent_for(task["agent"], task["model"]),
            layer=task["layer"],
            messages=build_refine_messages(
                config.options.prompts,
                task["messages"],
                task["draft"],
                task["suggestions"],
            ),
            params=task["params"],
        )

    return proposer_node(
        "refine",
        "refine",
        plan,
        lambda task, text: {"refined": {task["agent"]: text}},
        _agent_late,
        config,
    )


def make_summarize_node(config: MoAConfig) -> ModelNode:
    """The summary agent merges the refined answers (the drafts in plain MoA).

    Its reply is the run's answer when this is the run's last layer and no
    residual call follows (`moa_final`).
    """

    def plan(state: LayerState) -> ModelCall:
        settings = state["settings"]
        last = state["layer"] == settings["max_layers"]
        return ModelCall(
            role="summary",
            agent=config.aggregator_for(settings),
            layer=state["layer"],
            messages=build_summary_messages(
                config.options.prompts, state["messages"], layer_answers(state)
            ),
            params=settings["params"]["summary"],
            final=last and not residual_runs(state),
        )

    return model_node(
        "summarize",
        plan,
        lambda state, text: {"summary": text},
        config.runner,
        aggregator_failed,
        clean=strip_fences,
    )


def make_residual_node(config: MoAConfig) -> ModelNode:
    """The residual agent synthesises all layer outputs so far, or says stop.

    At the run's last layer its reply is the answer (`moa_final`), unless it
    is the stop signal.
    """

    def plan(state: LayerState) -> ModelCall:
        settings = state["settings"]
        return ModelCall(
            role="residual",
            agent=config.residual_for(settings),
            layer=state["layer"],
            messages=build_residual_messages(
                config.options.prompts,
                state["messages"],
                [*state["history"], state["summary"]],
                offer_signal=settings["early_stopping"]
                and config.options.stop_decision == "signal",
            ),
            params=settings["params"]["residual"],
            final=state["layer"] == settings["max_layers"],
        )

    return model_node(
        "residual",
        plan,
        lambda state, text: {"residual": text},
        config.runner,
        aggregator_failed,
        clean=strip_fences,
    )


def _verdict_failed(state: Any, call: ModelCall, error: Exception) -> Update:
    """A verdict that could not be had decides nothing: the loop goes on."""
    return {"verdict": f"(no verdict: {describe(error)})"}


def make_verdict_node(config: MoAConfig) -> ModelNode:
    """The residual agent judges whether the latest round beats the previous one.

    A short call whose reply must be `{"better": true|false}`, held to that
    schema where the client can send one (see `json_reply_params`).
    """

    def plan(state: LayerState) -> ModelCall:
        settings = state["settings"]
        agent = config.residual_for(settings)
        constraint = json_reply_params(agent.model.get(), "verdict", VERDICT_SCHEMA)
        return ModelCall(
            role="verdict",
            agent=agent,
            layer=state["layer"],
            messages=build_verdict_messages(
                config.options.prompts,
                state["messages"],
                previous=state["history"][-1],
                latest=state["summary"],
                layer=state["layer"],
            ),
            params={**settings["params"]["verdict"], **constraint},
        )

    return model_node(
        "verdict",
        plan,
        lambda state, text: {"verdict": text},
        config.runner,
        _verdict_failed,
    )
