"""The model-calling nodes of a layer: draft, refine, summarize and residual.

A node plans its call from its input (pure), makes it through the graph's
`CallRunner` tagged with the `moa_*` metadata, and writes the reply, without
any fence tag it echoed, under its agent's name. The critique nodes are in
`critiques`, one strategy each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import AnyMessage

from attention_moa_graph._calls.errors import (
    AgentFailedError,
    AgentsExhaustedError,
    AggregatorFailedError,
    describe,
    is_transient,
)
from attention_moa_graph._calls.model_node import (
    LateFn,
    ModelCall,
    ModelNode,
    Update,
    model_node,
)
from attention_moa_graph._calls.models import (
    Agent,
    json_reply_params,
    response_format_params,
)
from attention_moa_graph._core.config import MoAConfig
from attention_moa_graph._core.guards import guard_reply
from attention_moa_graph._core.messages import (
    build_draft_messages,
    build_refine_messages,
    build_residual_messages,
    build_summary_messages,
    build_verdict_messages,
    clean_reply,
    with_instructions,
)
from attention_moa_graph._core.routing import layer_answers, residual_runs
from attention_moa_graph._core.state import DraftTask, LayerState, RefineTask
from attention_moa_graph._core.stop import VERDICT_SCHEMA
from attention_moa_graph._core.tools import (
    bind_params,
    has_tool_messages,
    plain_history,
    with_native_calls,
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
        clean=clean_reply,
        guard=guard_reply,
    )


def _agent_late(task: DraftTask | RefineTask, call: ModelCall) -> Update:
    """Past the stage deadline: record which of the agent's stages was late.

    A late draft keeps the agent out of the layer; after a late refinement
    the summary merges the agent's draft.
    """
    return {"late_agents": {task["agent"]: call.role}}


def with_note(messages: list[AnyMessage], task: Mapping[str, Any]) -> list[AnyMessage]:
    """A draft's messages with the run's tools note added to its instructions."""
    note = task.get("tools_note")
    return with_instructions(messages, note) if note else messages


def _conversation(task: Mapping[str, Any]) -> list[AnyMessage]:
    """The conversation as a stage not bound to the tools may receive it."""
    messages = task["messages"]
    return plain_history(messages) if has_tool_messages(messages) else messages


def make_draft_node(config: MoAConfig) -> ModelNode:
    """Agent i drafts an answer (with the previous layer's output as reference).

    With tools the draft may be the calls the agent would make, in text.
    """

    def plan(task: DraftTask) -> ModelCall:
        return ModelCall(
            role="draft",
            agent=config.agent_for(task["agent"], task["model"]),
            layer=task["layer"],
            messages=with_note(
                build_draft_messages(
                    config.options.prompts, _conversation(task), task["reference"]
                ),
                task,
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
                task.get("tools_note"),
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


def _decision_inputs(
    state: LayerState, agent: Agent
) -> tuple[list[AnyMessage], dict[str, Any]]:
    """The conversation a summary or residual call sees, and its tool binding.

    In a run with tools the agent is bound to them (its model's own
    `bind_tools`, honouring `tool_choice`) and sees tool messages as they are;
    a model without tool calling, or `tool_choice="none"`, gets them in text
    and writes calls in the text protocol.
    """
    settings, messages = state["settings"], state["messages"]
    tools, choice = settings.get("tools") or [], settings.get("tool_choice", "auto")
    bound = None
    if tools and choice != "none":
        bound = bind_params(agent.model.get(), tools, choice)
    if bound is None and has_tool_messages(messages):
        messages = plain_history(messages)
    shaped = response_format_params(agent.model.get(), settings.get("response_format"))
    return list(messages), {**(bound or {}), **shaped}


def _with_decision(messages: list[AnyMessage], settings: Any) -> list[AnyMessage]:
    note = settings.get("notes", {}).get("decision")
    return with_instructions(messages, note) if note else messages


def make_summarize_node(config: MoAConfig) -> ModelNode:
    """The summary agent merges the refined answers (the drafts in plain MoA).

    Its reply is the run's answer when this is the run's last layer and no
    residual call follows (`moa_final`).
    """

    def plan(state: LayerState) -> ModelCall:
        settings = state["settings"]
        last = state["layer"] == settings["options"]["max_layers"]
        agent = config.aggregator_for(settings)
        conversation, bound = _decision_inputs(state, agent)
        messages = build_summary_messages(
            config.options.prompts, conversation, layer_answers(state)
        )
        return ModelCall(
            role="summary",
            agent=agent,
            layer=state["layer"],
            messages=_with_decision(messages, settings),
            params={**settings["params"]["summary"], **bound},
            final=last and not residual_runs(state),
        )

    return model_node(
        "summarize",
        plan,
        lambda state, text: {"summary": text},
        config.runner,
        aggregator_failed,
        clean=clean_reply,
        text_of=with_native_calls,
        guard=guard_reply,
    )


def make_residual_node(config: MoAConfig) -> ModelNode:
    """The residual agent synthesises all layer outputs so far, or says stop.

    At the run's last layer its reply is the answer (`moa_final`), unless it
    is the stop signal.
    """

    def plan(state: LayerState) -> ModelCall:
        settings = state["settings"]
        agent = config.residual_for(settings)
        conversation, bound = _decision_inputs(state, agent)
        messages = build_residual_messages(
            config.options.prompts,
            conversation,
            [*state["history"], state["summary"]],
            offer_signal=settings["options"]["early_stopping"]
            and config.options.stop_decision == "signal",
        )
        return ModelCall(
            role="residual",
            agent=agent,
            layer=state["layer"],
            messages=_with_decision(messages, settings),
            params={**settings["params"]["residual"], **bound},
            final=state["layer"] == settings["options"]["max_layers"],
        )

    return model_node(
        "residual",
        plan,
        lambda state, text: {"residual": text},
        config.runner,
        aggregator_failed,
        clean=clean_reply,
        text_of=with_native_calls,
        guard=guard_reply,
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
