"""One Attention-MoA layer as a compiled subgraph.

draft (xN) -> gather_drafts -> cross_attention (xN(N-1)) and self_attention
(xN), one parallel stage -> gather_critiques -> refine (xN) -> gather_refined
-> summarize -> [residual, from layer 2 on]. Stages switched off at build time
are not in the graph; stages switched off for one run are skipped by the
routers. The subgraph returns its whole state; the outer loop's layer node
turns it into the `LayerRecord` (`close_layer`), so that opening and closing a
layer cost no steps (and no checkpoints) of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send

from attention_moa_graph._calls.usage import report_calls
from attention_moa_graph._core.config import MoAConfig
from attention_moa_graph._core.context import MoAContext
from attention_moa_graph._core.nodes import (
    make_batched_critique_node,
    make_cross_attention_node,
    make_draft_node,
    make_refine_node,
    make_residual_node,
    make_self_attention_node,
    make_summarize_node,
)
from attention_moa_graph._core.routing import (
    fan_out_critiques,
    fan_out_drafts,
    fan_out_refinements,
    is_stop_signal,
    live_at_end,
    route_after_refine,
    route_after_summary,
)
from attention_moa_graph._core.state import (
    LayerInput,
    LayerRecord,
    LayerState,
)

LAYER_GRAPH_NAME = "moa_layer"
# `Callable[..., ...]`: LangGraph injects `runtime` by parameter name.
NodeFn = Callable[..., dict[str, Any]]


def close_layer(state: LayerState) -> LayerRecord:
    """Turn a finished layer's state into its record, deciding the stop.

    The layer output is the residual synthesis when there is one, else the
    summary. A residual reply that is the stop signal stops the loop when
    early stopping is on; either way it is no answer, so the summary stands.
    """
    names = state["settings"]["agents"]
    residual = state.get("residual")
    signalled = residual is not None and is_stop_signal(residual)
    stopped = signalled and state["settings"]["early_stopping"]
    usable = residual is not None and not signalled and bool(residual.strip())
    critiques = state.get("critiques", {})
    refined = state.get("refined", {})
    live = live_at_end(state, names)
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
        output=residual if usable and residual is not None else state["summary"],
        stopped=stopped,
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
    )


def build_layer(
    config: MoAConfig,
) -> CompiledStateGraph[LayerState, MoAContext, LayerInput, LayerState]:
    """Compile the subgraph that runs one layer for every agent of `config`."""
    builder = StateGraph(
        LayerState,
        context_schema=MoAContext,
        input_schema=LayerInput,
        output_schema=LayerState,
    )

    def stage_done(stage: str, count: Callable[[LayerState], int]) -> NodeFn:
        def gather(state: LayerState, runtime: Runtime[MoAContext]) -> dict[str, Any]:
            runtime.stream_writer(
                {
                    "event": "stage_done",
                    "layer": state["layer"],
                    "stage": stage,
                    "results": count(state),
                    "calls": len(state["calls"]),
                }
            )
            return {}

        return gather

    def drafts(state: LayerState) -> list[Send]:
        return fan_out_drafts(state, state["settings"]["agents"])

    batched = config.critique_mode == "batched"

    def critiques(state: LayerState) -> list[Send] | str:
        return fan_out_critiques(state, state["settings"]["agents"], batched=batched)

    def refinements(state: LayerState) -> list[Send]:
        return fan_out_refinements(state, state["settings"]["agents"], batched=batched)

    def summary(state: LayerState) -> list[Send] | str:
        return route_after_refine(state, state["settings"]["agents"])

    builder.add_node(
        "draft",
        make_draft_node(config),
    )
    builder.add_node("gather_drafts", stage_done("draft", lambda s: len(s["drafts"])))
    critique_nodes: list[str] = []
    if batched and (config.cross_attention or config.self_attention):
        builder.add_node("critique", make_batched_critique_node(config))
        critique_nodes.append("critique")
    elif config.cross_attention:
        builder.add_node(
            "cross_attention",
            make_cross_attention_node(config),
        )
        critique_nodes.append("cross_attention")
    if config.self_attention and not batched:
        builder.add_node(
            "self_attention",
            make_self_attention_node(config),
        )
        critique_nodes.append("self_attention")
    if critique_nodes:
        builder.add_node(
            "gather_critiques",
            stage_done("critique", lambda s: sum(map(len, s["critiques"].values()))),
        )
        builder.add_node(
            "refine",
            make_refine_node(config),
        )
        builder.add_node(
            "gather_refined", stage_done("refine", lambda s: len(s.get("refined", {})))
        )
        for node in critique_nodes:
            builder.add_edge(node, "gather_critiques")
        # A router may also re-send the previous stage's failed calls.
        builder.add_conditional_edges(
            "gather_critiques", refinements, ["refine", *critique_nodes]
        )
        builder.add_edge("refine", "gather_refined")
        builder.add_conditional_edges(
            "gather_refined", summary, ["summarize", "refine"]
        )
    builder.add_node(
        "summarize",
        make_summarize_node(config),
    )

    builder.add_conditional_edges(START, drafts, ["draft"])
    builder.add_edge("draft", "gather_drafts")
    builder.add_conditional_edges(
        "gather_drafts", critiques, ["draft", *critique_nodes, "summarize"]
    )
    if config.residual and config.max_layers > 1:
        builder.add_node(
            "residual",
            make_residual_node(config),
        )
        builder.add_conditional_edges(
            "summarize", route_after_summary, ["residual", END]
        )
        builder.add_edge("residual", END)
    else:
        builder.add_edge("summarize", END)
    return builder.compile(name=LAYER_GRAPH_NAME)
