"""`create_attention_moa`: validate the arguments, wire the layer loop, compile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.config import merge_configs
from langgraph.cache.base import BaseCache
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.types import Checkpointer, Overwrite, RetryPolicy

from attention_moa_graph._calls.errors import MoAInputError, is_transient
from attention_moa_graph._calls.models import (
    ModelLike,
    Proposer,
)
from attention_moa_graph._calls.usage import combine_reports, empty_report
from attention_moa_graph._core.config import CritiqueMode
from attention_moa_graph._core.context import MoAContext
from attention_moa_graph._core.layer import build_layer, close_layer
from attention_moa_graph._core.messages import message_text
from attention_moa_graph._core.prompts import DEFAULT_PROMPTS, MoAPrompts
from attention_moa_graph._core.routing import route_after_layer
from attention_moa_graph._core.state import (
    LayerInput,
    LayerState,
    MoAInput,
    MoAOutput,
    MoAState,
    Role,
)
from attention_moa_graph._core.validation import build_config

DEFAULT_RETRY_POLICY = RetryPolicy(
    max_attempts=3,
    initial_interval=0.5,
    backoff_factor=2.0,
    max_interval=8.0,
    jitter=True,
    retry_on=is_transient,
)
"""Three attempts with jittered backoff, on transient failures only.

Transient: rate limits, 5xx, timeouts, dropped connections, unparseable or
empty replies. A bad request, a bad key or an unknown model fails at once.
"""


def create_attention_moa(
    proposers: Sequence[ModelLike | Proposer],
    *,
    aggregator: ModelLike | Proposer,
    max_layers: int = 3,
    early_stopping: bool = True,
    cross_attention: bool = True,
    self_attention: bool = True,
    residual: bool = True,
    residual_model: ModelLike | Proposer | None = None,
    prompts: MoAPrompts = DEFAULT_PROMPTS,
    temperature: float | None = None,
    temperatures: Mapping[Role, float] | None = None,
    retry_policy: RetryPolicy | None = DEFAULT_RETRY_POLICY,
    call_timeout: float | None = 120.0,
    hedge_after: float | None = None,
    critique_deadline: float | None = None,
    stage_deadline: float | None = None,
    max_concurrent_calls: int | None = None,
    critique_mode: CritiqueMode = "pairwise",
    min_agents: int = 1,
    checkpointer: Checkpointer = None,
    store: BaseStore | None = None,
    cache: BaseCache[Any] | None = None,
    name: str = "attention_moa",
) -> CompiledStateGraph[MoAState, MoAContext, MoAInput, MoAOutput]:
    """Build the Attention-MoA graph (arXiv 2601.16596).

    Each layer: every proposer drafts; every agent critiques every peer's draft
    (cross-attention) and its own (self-attention), all in one parallel stage;
    each agent refines its draft from the suggestions addressed to it; the
    aggregator merges the refined answers; from layer 2 on the residual agent
    synthesises all layer outputs so far, or ends the loop with `STOP_SIGNAL`.

    Args:
        proposers: The collaborative agents: chat models, `"provider:model"`
            strings (resolved on first use) or `Proposer(name=..., model=...)`.
            Bare models are named `proposer_0`, `proposer_1`, ...
        aggregator: The summary agent, and the residual agent unless
            `residual_model` is given. A bare model is named `aggregator`.
        max_layers: Layers to run at most (1 to 32).
        early_stopping: Let the residual agent stop the loop early.
        cross_attention: Have each agent critique every peer's draft.
        self_attention: Have each agent critique its own draft. With both
            attentions off a layer is plain MoA: drafts, then the summary.
        residual: Call the residual agent from layer 2 on; without it the
            answer is the last layer's summary.
        residual_model: A different model for the residual agent (named
            `residual` when bare).
        prompts: The stage templates; see `MoAPrompts`.
        temperature: Sampling temperature for every call, passed to the model
            at call time; None keeps each model's own setting.
        temperatures: Per-role temperatures (`draft`, `cross_attention`,
            `self_attention`, `refine`, `summary`, `residual`), taking
            precedence over `temperature`.
        retry_policy: Retries of a failed model call; None disables them.
            Client-side retries of models this package builds or copies are
            turned off, so attempts do not multiply.
        call_timeout: Seconds a model call may take before it counts as a
            (retryable) timeout; None waits forever.
        hedge_after: Straggler policy, off by default: when a call has no
            reply after this many seconds, send the same request again to
            the same model and take whichever reply comes first (the other
            is cancelled). Costs a duplicate request for each slow call; the
            provider may bill both.
        critique_deadline: Straggler policy, off by default: seconds each
            critique call may take; a critique not back by then is left out
            and its target refines with the suggestions it has. Late
            critiques are listed in the layer record (`late_critiques`).
            This trades some of the paper's suggestions for latency.
        stage_deadline: Straggler policy, off by default: seconds each call
            of the draft, critique and refinement stages may take (a
            `critique_deadline` overrides it for critiques). An agent whose
            draft is late sits out the rest of the layer; one whose
            refinement is late has its draft merged by the summary instead.
            Late agents are listed in the layer record (`late_agents`). If
            fewer than `min_agents` drafts arrive in time, the missing ones
            are sent again without a deadline. This trades agents' work for
            latency, more than `critique_deadline` does.
        critique_mode: `"pairwise"` (the paper: one call per critic and
            target, N² per layer) or `"batched"`: one call per critic
            reviewing all its targets, its reply split at `## Answer N`
            headings (N calls per layer, shorter critique prompts in total,
            fewer chances for one slow call to hold the stage). Departs from
            the paper: each critic sees every draft at once.
        max_concurrent_calls: At most this many model calls in flight at
            once across every run of this graph (the rest wait their turn);
            None: no cap beyond the stages' own fan-out.
        min_agents: Fewest agents a layer may go on with when some fail after
            their retries; below it the failed calls get one more try, then
            the run stops with `AgentsExhaustedError`.
        checkpointer: Saves state after each step; needed for multi-turn
            threads and for resuming a failed run.
        store: A LangGraph store made available to the graph.
        cache: A LangGraph node cache backend.
        name: The graph's name (the root run's name in traces).

    Returns:
        A compiled graph. Input `{"messages": [...]}`; output `messages`,
        `final_answer`, `stop_reason`, `layers` and `usage`.

    Raises:
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
    config = build_config(
        proposers,
        aggregator=aggregator,
        residual_model=residual_model,
        max_layers=max_layers,
        early_stopping=early_stopping,
        cross_attention=cross_attention,
        self_attention=self_attention,
        residual=residual,
        prompts=prompts,
        temperature=temperature,
        temperatures=temperatures,
        call_timeout=call_timeout,
        hedge_after=hedge_after,
        critique_deadline=critique_deadline,
        stage_deadline=stage_deadline,
        max_concurrent_calls=max_concurrent_calls,
        critique_mode=critique_mode,
        min_agents=min_agents,
        retry_policy=retry_policy,
    )
    if not isinstance(name, str) or not name:
        raise ValueError("`name` must be a non-empty string, e.g. 'attention_moa'.")
    layer_graph = build_layer(config)

    def prepare(state: MoAState, runtime: Runtime[MoAContext]) -> dict[str, Any]:
        """Check the turn, fix this run's settings and create the models."""
        check_turn(state)
        settings = config.for_run(runtime.context)
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
        record = close_layer(layer)
        get_stream_writer()(
            {
                "event": "layer_end",
                "layer": record["layer"],
                "stopped": record["stopped"],
                "calls": record["usage"]["total"]["calls"],
            }
        )
        return {
            "layers": [record],
            "usage": combine_reports([state["usage"], record["usage"]]),
        }

    def run_layer(state: MoAState, config: RunnableConfig) -> dict[str, Any]:
        inputs = open_layer(state)
        return append(state, layer_graph.invoke(inputs, layer_config(inputs, config)))

    async def arun_layer(state: MoAState, config: RunnableConfig) -> dict[str, Any]:
        inputs = open_layer(state)
        output = await layer_graph.ainvoke(inputs, layer_config(inputs, config))
        return append(state, output)

    def finish(state: MoAState) -> dict[str, Any]:
        """Answer with the last layer's output."""
        last = state["layers"][-1]
        answer = last["output"]
        return {
            "final_answer": answer,
            "stop_reason": "early_stop" if last["stopped"] else "max_layers",
            "messages": [AIMessage(content=answer, name=name)],
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
    compiled = builder.compile(
        checkpointer=checkpointer, store=store, cache=cache, name=name
    )
    # The widest stage (the critiques) has N² calls. On the sync path LangGraph
    # runs them in a thread pool of `max_concurrency` threads, by default only
    # cpu_count + 4; this default lets every call of a stage run at once. A
    # caller's own `max_concurrency` overrides it.
    return compiled.with_config(max_concurrency=len(config.agents) ** 2)


def check_turn(state: MoAState) -> None:
    """Raise `MoAInputError` unless the conversation ends with a user message."""
    messages = state.get("messages") or []
    if not messages:
        raise MoAInputError(
            "no messages to answer: invoke the graph with "
            "{'messages': [('user', 'your question')]}."
        )
    last = messages[-1]
    if not isinstance(last, HumanMessage):
        raise MoAInputError(
            f"the last message must be the user's turn, but it is a '{last.type}' "
            "message. Append the user's next message, e.g. "
            "{'messages': [('user', 'follow-up question')]}."
        )
    if not message_text(last).strip():
        raise MoAInputError("the user's message is empty: give it some text to answer.")
