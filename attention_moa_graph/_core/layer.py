"""One Attention-MoA layer as a compiled subgraph.

draft (xN) -> gather_drafts -> the critique stage (cross_attention xN(N-1) and
self_attention xN, or one batched critique per critic) -> gather_critiques ->
refine (xN) -> gather_refined -> summarize -> [residual, from layer 2 on].
Stages switched off at build time are not in the graph; stages switched off
for one run are skipped by the routers. Each gather node records which agents
are still in the layer. The subgraph returns its whole state; the outer
loop's layer node turns it into the `LayerRecord` (`close_layer`), so that
opening and closing a layer cost no steps (and no checkpoints) of their own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from attention_moa_graph._calls.errors import MoAError
from attention_moa_graph._calls.usage import report_calls
from attention_moa_graph._core.config import MoAConfig
from attention_moa_graph._core.context import MoAContext
from attention_moa_graph._core.critiques import critique_strategy
from attention_moa_graph._core.nodes import (
    make_draft_node,
    make_refine_node,
    make_residual_node,
    make_summarize_node,
    make_verdict_node,
)
from attention_moa_graph._core.routing import (
    SECOND_TRY,
    agreed,
    decides_by_verdict,
    fan_out_drafts,
    final_agents,
    live_after,
    residual_runs,
    route_after_critiques,
    route_after_drafts,
    route_after_refine,
    route_after_summary,
    route_after_verdict,
)
from attention_moa_graph._core.state import (
    LayerInput,
    LayerRecord,
    LayerState,
    Stage,
)
from attention_moa_graph._core.stop import converged, is_stop_signal, parse_verdict
from attention_moa_graph._core.tools import keep_agreed, tool_names

LAYER_GRAPH_NAME = "moa_layer"
# `Callable[..., ...]`: LangGraph injects `runtime` by parameter name.
NodeFn = Callable[..., dict[str, Any]]


def close_layer(state: LayerState, verdict: bool = True) -> LayerRecord:
    """Turn a finished layer's state into its record, deciding the stop.

    The layer output is the residual synthesis when there is one, else the
    summary. With stops decided by `verdict`, the loop stops when the rounds
    converged or the verdict is `{"better": false}`; otherwise a residual reply
    that is the stop signal stops it. Either way the signal is no answer, so
    the summary stands, and with early stopping off nothing stops the loop.
    """
    names = state["settings"]["agents"]
    residual = state.get("residual")
    signalled = residual is not None and is_stop_signal(residual)
    reply = state.get("verdict")
    repeated = residual_runs(state) and converged(
        state["history"][-1], state["summary"]
    )
    agreement = agreed(state)
    if decides_by_verdict(state, verdict):
        stopped = repeated or parse_verdict(reply or "") is False
    else:
        stopped = signalled and state["settings"]["options"]["early_stopping"]
    stopped = stopped or agreement
    critiques = state.get("critiques", {})
    refined = state.get("refined", {})
    # The signal is never an answer: an empty or signalling residual reply
    # gives way to the summary, a summary that is the signal (a residual reply
    # copying it, say) to the last round's output, then the agents' answers.
    candidates = itertools.chain(
        (residual or "", state["summary"]),
        reversed(state["history"]),
        (refined[n] for n in names if n in refined),
        (state["drafts"][n] for n in names if n in state["drafts"]),
    )
    output = next((t for t in candidates if t.strip() and not is_stop_signal(t)), None)
    if output is not None and output == residual:
        # The residual agent may revise the calls the layer agreed on, never
        # drop one.
        tools = state["settings"].get("tools") or []
        output, _ = keep_agreed(state["summary"], output, tool_names(tools))
    if output is None:
        raise MoAError(
            f"layer {state['layer']}: the summary and every agent's answer were "
            "the stop signal or empty, so there is no answer to give; check the "
            "models and prompts."
        )
    live = final_agents(state)
    return LayerRecord(
        layer=state["layer"],
        drafts={n: state["drafts"][n] for n in names if n in state["drafts"]},
        critiques={
            target: {c: critiques[target][c] for c in names if c in critiques[target]}
            for target in names
            if target in critiques
        },
        refined={n: refined[n] for n in names if n in refined},
        summary=state["summary"],
        residual=residual,
        output=output,
        verdict=reply,
        converged=repeated,
        stopped=stopped,
        agreed=agreement,
        failures={
            agent: why
            for agent, why in state.get("failures", {}).items()
            if agent not in live
        },
        late_critiques=sorted(state.get("late", [])),
        late_agents={
            agent: stage
            for agent, stage in state.get("late_agents", {}).items()
            # A strict second try may have produced the missing result after all.
            if agent not in (refined if stage == "refine" else state["drafts"])
        },
        usage=report_calls(state["calls"]),
        flags={c["output"]: c["flags"] for c in state["calls"] if c.get("flags")},
    )


def _gather(stage: Stage, count: Callable[[LayerState], int]) -> NodeFn:
    """The fan-in after a stage: who is still in the layer, announced to streams."""

    def gather(state: LayerState, runtime: Runtime[Any]) -> dict[str, Any]:
        live = live_after(state, stage)
        runtime.stream_writer(
            {
                "event": "stage_done",
                "layer": state["layer"],
                "stage": stage,
                "results": count(state),
                "calls": len(state["calls"]),
            }
        )
        return {"live": {stage: live}}

    return gather


def build_layer(
    config: MoAConfig,
) -> CompiledStateGraph[LayerState, Any, LayerInput, LayerState]:
    """Compile the subgraph that runs one layer for every agent of `config`."""
    builder = StateGraph(
        LayerState,
        context_schema=MoAContext,
        input_schema=LayerInput,
        output_schema=LayerState,
    )
    critiques = critique_strategy(config)

    def after_drafts(state: LayerState) -> Any:
        return route_after_drafts(state, critiques)

    def after_critiques(state: LayerState) -> Any:
        assert critiques is not None
        return route_after_critiques(state, critiques)

    builder.add_node("draft", make_draft_node(config))
    builder.add_node("gather_drafts", _gather("draft", lambda s: len(s["drafts"])))
    builder.add_node("summarize", make_summarize_node(config))
    builder.add_conditional_edges(START, fan_out_drafts, ["draft"])
    builder.add_edge("draft", "gather_drafts")
    if critiques is None:
        builder.add_conditional_edges(
            "gather_drafts",
            after_drafts,
            {SECOND_TRY: "draft", "summarize": "summarize"},
        )
    else:
        stage = list(critiques.nodes)
        for name, node in critiques.nodes.items():
            builder.add_node(name, node)
            builder.add_edge(name, "gather_critiques")
        builder.add_node(
            "gather_critiques",
            _gather("critique", lambda s: sum(map(len, s["critiques"].values()))),
        )
        builder.add_node("refine", make_refine_node(config))
        builder.add_node(
            "gather_refined", _gather("refine", lambda s: len(s.get("refined", {})))
        )
        builder.add_conditional_edges(
            "gather_drafts",
            after_drafts,
            {SECOND_TRY: "draft", **{n: n for n in stage}, "summarize": "summarize"},
        )
        # A router may also re-send the previous stage's failed calls.
        builder.add_conditional_edges(
            "gather_critiques",
            after_critiques,
            {"refine": "refine", **{f"{SECOND_TRY}:{n}": n for n in stage}},
        )
        builder.add_edge("refine", "gather_refined")
        builder.add_conditional_edges(
            "gather_refined",
            route_after_refine,
            {SECOND_TRY: "refine", "summarize": "summarize"},
        )
    if config.options.residual and config.options.max_layers > 1:
        builder.add_node("residual", make_residual_node(config))
        builder.add_edge("residual", END)
        if config.options.stop_decision == "verdict":
            builder.add_node("verdict", make_verdict_node(config))

            def after_summary(state: LayerState) -> Any:
                return route_after_summary(state, verdict=True)

            builder.add_conditional_edges(
                "summarize", after_summary, ["verdict", "residual", END]
            )
            builder.add_conditional_edges(
                "verdict", route_after_verdict, ["residual", END]
            )
        else:
            builder.add_conditional_edges(
                "summarize", route_after_summary, ["residual", END]
            )
    else:
        builder.add_edge("summarize", END)
    return builder.compile(name=LAYER_GRAPH_NAME)
