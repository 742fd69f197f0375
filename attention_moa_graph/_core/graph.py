"""`create_attention_moa`: validate the arguments, wire the layer loop, compile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.config import merge_configs
from langgraph.cache.base import BaseCache
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import Checkpointer, Overwrite
from typing_extensions import Unpack

from attention_moa_graph._calls.errors import MoAInputError
from attention_moa_graph._calls.models import ModelLike, Proposer
from attention_moa_graph._calls.usage import combine_reports, empty_report
from attention_moa_graph._core.compiled import checked
from attention_moa_graph._core.config import build_config
from attention_moa_graph._core.context import MoAContext
from attention_moa_graph._core.guards import final_answer
from attention_moa_graph._core.layer import build_layer, close_layer
from attention_moa_graph._core.messages import latest_turn, message_text
from attention_moa_graph._core.options import MoAOptions, MoAOptionsDict
from attention_moa_graph._core.routing import route_after_layer
from attention_moa_graph._core.state import (
    LayerInput,
    LayerRecord,
    LayerState,
    MoAInput,
    MoAOutput,
    MoAState,
    StopReason,
)
from attention_moa_graph._core.tools import final_message, tool_names, tool_notes


def create_attention_moa(
    proposers: Sequence[ModelLike | Proposer],
    *,
    aggregator: ModelLike | Proposer,
    residual_model: ModelLike | Proposer | None = None,
    options: MoAOptions | None = None,
    tools: Sequence[Any] = (),
    tool_choice: str | dict[str, Any] | None = None,
    checkpointer: Checkpointer = None,
    store: BaseStore | None = None,
    cache: BaseCache[Any] | None = None,
    name: str = "attention_moa",
    **keywords: Unpack[MoAOptionsDict],
) -> CompiledStateGraph[MoAState, MoAContext, MoAInput, MoAOutput]:
    """Build the Attention-MoA graph (arXiv 2601.16596).

    Each layer: every proposer drafts; every agent critiques every peer's draft
    (cross-attention) and its own (self-attention), all in one parallel stage;
    each agent refines its draft from the suggestions addressed to it; the
    aggregator merges the refined answers; from layer 2 on the residual agent
    synthesises all layer outputs so far, unless the loop stops early (see
    `stop_decision`).

    Args:
        proposers: The collaborative agents: chat models, `"provider:model"`
            strings (resolved on first use) or `Proposer(name=..., model=...)`.
            Bare models are named `proposer_0`, `proposer_1`, ...
        aggregator: The summary agent, and the residual agent unless
            `residual_model` is given. A bare model is named `aggregator`.
        residual_model: A different model for the residual agent (named
            `residual` when bare).
        options: A `MoAOptions` to start from; keywords override it.
        tools: Tools the ensemble may call (`@tool` functions, `BaseTool`s,
            pydantic models or OpenAI tool schemas); a run's context may give
            others. Proposers propose calls in text, critics judge them, and
            the summary and residual agents make the agreed calls natively:
            the answer is then an `AIMessage` with `tool_calls`.
        tool_choice: `auto` (default), `none`, `required` (also `any`) or a
            tool's name.
        checkpointer: Saves state after each step; needed for multi-turn
            threads and for resuming a failed run.
        store: A LangGraph store made available to the graph.
        cache: A LangGraph node cache backend.
        name: The graph's name (the root run's name in traces).
        **keywords: Any option by name (`MoAOptionsDict` types them), e.g.
            `max_layers=2`, `temperature=0.7`, `early_stopping=False`; the README's
            configuration table lists them all.

    Returns:
        A compiled graph. Input `{"messages": [...]}`; output `messages`,
        `final_answer`, `stop_reason`, `layers` and `usage`.

    Raises:
        TypeError: If a keyword is no option; the message names the nearest.
        ValueError: If an argument is invalid; the message says how to fix it.

    Example:
        >>> from attention_moa_graph import create_attention_moa
        >>> graph = create_attention_moa(
        ...     ["demo:alpha", "demo:beta", "demo:gamma"],
        ...     aggregator="demo:chair",
        ...     max_layers=2,
        ... )
        >>> result = graph.invoke({"messages": [("user", "Why is the sky blue?")]})
        >>> result["stop_reason"], len(result["layers"])
        ('max_layers', 2)
    """
    chosen = MoAOptions.build(options, where="create_attention_moa()", **keywords)
    config = build_config(
        proposers,
        aggregator=aggregator,
        residual_model=residual_model,
        options=chosen,
        tools=tools,
        tool_choice=tool_choice,
    )
    if not isinstance(name, str) or not name:
        raise ValueError("`name` must be a non-empty string, e.g. 'attention_moa'.")
    layer_graph = build_layer(config)

    def prepare(state: MoAState, runtime: Runtime[MoAContext]) -> dict[str, Any]:
        """Check the turn, fix this run's settings and create the models."""
        check_turn(state)
        settings = config.for_run(runtime.context)
        settings["notes"] = tool_notes(
            chosen.prompts,
            settings.get("tools", []),
            settings.get("tool_choice", "auto"),
            state["messages"],
            settings.get("response_format"),
        )
        # Here, not in the model nodes: a missing key fails before any call, and
        # client construction (which reads files) stays off the event loop.
        config.build_models(settings)
        return {
            "settings": settings,
            "layers": Overwrite([]),
            "usage": empty_report(),
        }

    def layer_input(state: MoAState) -> LayerInput:
        layers = state["layers"]
        return LayerInput(
            messages=state["messages"],
            layer=len(layers) + 1,
            history=[record["output"] for record in layers],
            settings=state["settings"],
        )

    def layer_config(inputs: LayerInput, config: RunnableConfig) -> RunnableConfig:
        layer = inputs["layer"]
        return merge_configs(
            config, {"run_name": f"layer_{layer}", "metadata": {"moa_layer": layer}}
        )

    def open_layer(state: MoAState) -> LayerInput:
        """The layer's input; announced to stream consumers."""
        inputs = layer_input(state)
        get_stream_writer()({"event": "layer_start", "layer": inputs["layer"]})
        return inputs

    def append(state: MoAState, output: dict[str, Any]) -> dict[str, Any]:
        """Record the finished layer (which decides the stop) and announce it."""
        layer = cast(LayerState, output)
        record = close_layer(layer, verdict=chosen.stop_decision == "verdict")
        get_stream_writer()(
            {
                "event": "layer_end",
                "layer": record["layer"],
                "stopped": record["stopped"],
                "converged": record["converged"],
                "agreed": record["agreed"],
                "calls": record["usage"]["total"]["calls"],
            }
        )
        return {
            "layers": [record],
            "usage": combine_reports([state["usage"], record["usage"]]),
        }

    # Two entry points into one subgraph: a sync run must drive it synchronously,
    # since its checkpoints go through the parent's saver, which may be sync only
    # (SqliteSaver). Its model calls still share the one engine (see _calls.loop).
    def run_layer(state: MoAState, config: RunnableConfig) -> dict[str, Any]:
        inputs = open_layer(state)
        return append(state, layer_graph.invoke(inputs, layer_config(inputs, config)))

    async def arun_layer(state: MoAState, config: RunnableConfig) -> dict[str, Any]:
        inputs = open_layer(state)
        output = await layer_graph.ainvoke(inputs, layer_config(inputs, config))
        return append(state, output)

    def finish(state: MoAState) -> dict[str, Any]:
        """Answer with the last layer's output (its tool calls as `tool_calls`)."""
        last = state["layers"][-1]
        settings = state["settings"]
        if settings.get("tools") and settings.get("tool_choice") != "none":
            message = final_message(
                last["output"],
                tool_names(settings["tools"]),
                name=name,
                turn=len(state["messages"]),
            )
        else:
            message = AIMessage(content=guarded_answer(state["layers"]), name=name)
        return {
            "final_answer": message_text(message),
            "stop_reason": stop_reason(state),
            "messages": [message],
        }

    builder = StateGraph(
        MoAState,
        context_schema=MoAContext,
        input_schema=MoAInput,
        output_schema=MoAOutput,
    )
    builder.add_node("prepare", prepare)
    builder.add_node("layer", RunnableLambda(run_layer, afunc=arun_layer, name="layer"))
    builder.add_node("finish", finish)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "layer")
    builder.add_conditional_edges("layer", route_after_layer, ["layer", "finish"])
    builder.add_edge("finish", END)
    compiled = checked(
        builder.compile(checkpointer=checkpointer, store=store, cache=cache, name=name)
    )
    # The widest stage (the critiques) has N² calls. On the sync path LangGraph
    # runs them in a thread pool of `max_concurrency` threads, by default only
    # cpu_count + 4; this default lets every call of a stage run at once. A
    # caller's own `max_concurrency` overrides it.
    return compiled.with_config(max_concurrency=len(config.agents) ** 2)


def stop_reason(state: MoAState) -> StopReason:
    """Why the loop ended, the first that applies (see `MoAOutput.stop_reason`)."""
    last = state["layers"][-1]
    if last.get("agreed"):
        return "agreement"
    if last["stopped"]:
        return "early_stop"
    if len(state["layers"]) < state["settings"]["options"]["max_layers"]:
        return "token_budget"  # the only other reason to stop before the depth
    return "max_layers"


def guarded_answer(layers: Sequence[LayerRecord]) -> str:
    """The run's answer: its best complete candidate (see `guards.final_answer`).

    In order: the last layer's output, its summary, the earlier layers'
    outputs (newest first), then the last layer's refined answers and drafts.
    """
    last = layers[-1]

    def flags(record: LayerRecord, role: str, agent: str | None = None) -> list[str]:
        found = record.get("flags") or {}
        if agent is not None:
            return found.get(f"{role}:{agent}", [])
        return next((f for key, f in found.items() if key.startswith(f"{role}:")), [])

    def output(record: LayerRecord) -> tuple[str, list[str]]:
        made_by = "residual" if record["output"] == record["residual"] else "summary"
        return record["output"], flags(record, made_by)

    candidates = [
        output(last),
        (last["summary"], flags(last, "summary")),
        *(output(record) for record in reversed(layers[:-1])),
        *((text, flags(last, "refine", a)) for a, text in last["refined"].items()),
        *((text, flags(last, "draft", a)) for a, text in last["drafts"].items()),
    ]
    return final_answer(candidates)


def check_turn(state: MoAState) -> None:
    """Raise `MoAInputError` unless the conversation ends with a user message."""
    messages = state.get("messages") or []
    if not messages:
        raise MoAInputError(
            "no messages to answer: invoke the graph with "
            "{'messages': [('user', 'your question')]}."
        )
    last = messages[-1]
    # In an agent loop the turn ends with the results of the calls it made.
    if isinstance(last, ToolMessage):
        last = messages[latest_turn(messages)]
    if not isinstance(last, HumanMessage):
        raise MoAInputError(
            f"the last message must be the user's turn (or the results of tool "
            f"calls), but it is a '{messages[-1].type}' message. Append the "
            "user's next message, e.g. {'messages': [('user', 'follow-up question')]}."
        )
    if not message_text(last).strip():
        raise MoAInputError("the user's message is empty: give it some text to answer.")
