"""The ensembles Attention-MoA is compared with, as LangGraph graphs.

- `create_moa`: classic Mixture-of-Agents. Proposers answer in rounds, each
  round seeing the previous round's answers; one aggregator merges the last.
- `create_self_moa`: several samples of one model, merged by that model.
- `create_single`: one model, one call.
- `create_self_consistency`: several samples of one model, and the answer
  most of them give (a vote, no merging call).

They share the model plumbing of Attention-MoA (lazy model specs, the call
policy and its runner, the `moa_layer`/`moa_role`/`moa_agent` metadata) and
its input and output: `messages` in; `final_answer`, `messages` and
`usage` out. Proposer calls have role `draft`, the aggregator's `summary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer, Send
from typing_extensions import TypedDict

from attention_moa_graph._calls.errors import AgentsExhaustedError
from attention_moa_graph._calls.model_node import ModelCall, model_node
from attention_moa_graph._calls.models import (
    Agent,
    ModelLike,
    Proposer,
    resolve_agents,
    resolve_single,
)
from attention_moa_graph._calls.runner import CallRunner
from attention_moa_graph._calls.usage import CallRecord, UsageReport, report_calls
from attention_moa_graph._core.compiled import checked
from attention_moa_graph._core.context import MoAContext, as_context, overrides_of
from attention_moa_graph._core.graph import check_turn
from attention_moa_graph._core.guards import guard_reply
from attention_moa_graph._core.messages import build_summary_messages, clean_reply
from attention_moa_graph._core.nodes import agent_failed, aggregator_failed
from attention_moa_graph._core.options import MoAOptions
from attention_moa_graph._core.sampling import role_params
from attention_moa_graph._core.state import MoAInput
from attention_moa_graph._knobs import Setting
from attention_moa_graph.evaluation.voting import majority_answer


def _collect(left: list[Any], right: list[Any] | None) -> list[Any]:
    """Append parallel writes; `None` clears the list for a new user turn."""
    return [] if right is None else [*left, *right]


def _merge(left: dict[str, str], right: dict[str, str] | None) -> dict[str, str]:
    """Merge parallel writes; `None` clears the map for a new user turn."""
    return {} if right is None else {**left, **right}


class BaselineOutput(TypedDict):
    """What a run returns."""

    messages: Annotated[list[AnyMessage], add_messages]
    final_answer: str
    usage: UsageReport


class BaselineState(MoAInput, BaselineOutput):
    """The whole state: the answers of the current round and the calls made."""

    round: int
    params: dict[str, dict[str, Any]]
    """`draft` and `summary` -> their calls' parameters in this run."""
    answers: Annotated[dict[str, str], _merge]
    """`"<round>/<agent>"` -> that agent's answer in that round."""
    previous: list[str]
    failures: Annotated[dict[str, str], _merge]
    calls: Annotated[list[CallRecord], _collect]


class ProposeTask(TypedDict):
    """One proposer's call in one round."""

    agent: str
    round: int
    messages: list[AnyMessage]
    previous: list[str]
    params: dict[str, Any]


def for_baselines(setting: Setting) -> bool:
    """Whether the comparison ensembles take this option."""
    return setting.knob.baselines


def baseline_options(where: str, **options: Any) -> MoAOptions:
    """The options a baseline factory was given; the others are refused."""
    return MoAOptions.build(where=where, allowed=for_baselines, **options)


def _run_overrides(context: Any) -> dict[str, Any]:
    """The run's options from its context; ones a baseline lacks are refused."""
    overrides = overrides_of(as_context(context))
    foreign = sorted(n for n in overrides if not MoAOptions.setting(n).knob.baselines)
    ctx = as_context(context)
    if ctx.proposer_models is not None or ctx.aggregator_model is not None:
        foreign.append("proposer_models/aggregator_model")
    if foreign:
        raise ValueError(
            f"the comparison ensembles take no {', '.join(foreign)} in a run's "
            "context; build a different baseline instead."
        )
    return overrides


def _build(
    agents: Sequence[Agent],
    aggregator: Agent | None,
    *,
    rounds: int,
    options: MoAOptions,
    checkpointer: Checkpointer,
    name: str,
    vote: bool = False,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    by_name = {agent.name: agent for agent in agents}
    runner = CallRunner(options.calls)
    prompts = options.prompts

    def plan_proposal(task: ProposeTask) -> ModelCall:
        messages = task["messages"]
        if task["previous"]:
            messages = build_summary_messages(prompts, messages, task["previous"])
        return ModelCall(
            role="draft",
            agent=by_name[task["agent"]],
            layer=task["round"],
            messages=list(messages),
            params=task["params"],
            final=aggregator is None and len(agents) == 1,
        )

    propose = model_node(
        "propose",
        plan_proposal,
        lambda task, text: {"answers": {f"{task['round']}/{task['agent']}": text}},
        runner,
        agent_failed,
        clean=clean_reply,
        guard=guard_reply,
    )

    def plan_aggregate(state: BaselineState) -> ModelCall:
        assert aggregator is not None
        return ModelCall(
            role="summary",
            agent=aggregator,
            layer=rounds + 1,
            messages=build_summary_messages(
                prompts, state["messages"], state["previous"]
            ),
            params=state["params"]["summary"],
            final=True,
        )

    aggregate = model_node(
        "aggregate",
        plan_aggregate,
        lambda state, text: {"final_answer": text},
        runner,
        aggregator_failed,
        clean=clean_reply,
        guard=guard_reply,
    )

    def prepare(state: BaselineState, runtime: Runtime[Any]) -> dict[str, Any]:
        check_turn(state)  # type: ignore[arg-type]
        params = role_params(options.sampling, _run_overrides(runtime.context))
        for agent in (*agents, *([aggregator] if aggregator else [])):
            agent.model.get()
        return {
            "round": 1,
            "params": {role: params[role] for role in ("draft", "summary")},
            "answers": None,
            "previous": [],
            "failures": None,
            "calls": None,
            "final_answer": "",
        }

    def fan_out(state: BaselineState) -> list[Send]:
        return [
            Send(
                "propose",
                ProposeTask(
                    agent=agent.name,
                    round=state["round"],
                    messages=state["messages"],
                    previous=state["previous"],
                    params=state["params"]["draft"],
                ),
            )
            for agent in agents
        ]

    def collect(state: BaselineState) -> dict[str, Any]:
        number = state["round"]
        answers = [
            state["answers"][key]
            for agent in agents
            if (key := f"{number}/{agent.name}") in state["answers"]
        ]
        if not answers:
            raise AgentsExhaustedError(number, dict(state["failures"]))
        return {"previous": answers, "round": number + 1}

    def after_collect(state: BaselineState) -> list[Send] | str:
        if state["round"] <= rounds:
            return fan_out(state)
        return "aggregate" if aggregator is not None else "finish"

    def finish(state: BaselineState) -> dict[str, Any]:
        previous = state["previous"]
        answer = state["final_answer"] or (
            majority_answer(previous) if vote else previous[0]
        )
        return {
            "final_answer": answer,
            "messages": [AIMessage(content=answer, name=name)],
            "usage": report_calls(state["calls"]),
        }

    builder = StateGraph(
        BaselineState,
        context_schema=MoAContext,
        input_schema=MoAInput,
        output_schema=BaselineOutput,
    )
    builder.add_node("prepare", prepare)
    builder.add_node("propose", propose)
    builder.add_node("collect", collect)
    builder.add_node("aggregate", aggregate)
    builder.add_node("finish", finish)
    builder.add_edge(START, "prepare")
    builder.add_conditional_edges("prepare", fan_out, ["propose"])
    builder.add_edge("propose", "collect")
    builder.add_conditional_edges(
        "collect", after_collect, ["propose", "aggregate", "finish"]
    )
    builder.add_edge("aggregate", "finish")
    builder.add_edge("finish", END)
    compiled = checked(builder.compile(checkpointer=checkpointer, name=name))
    return compiled.with_config(max_concurrency=max(4, len(agents)))


def _check_count(value: object, what: str, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"`{what}` must be an integer >= 1, e.g. {example}; got {value!r}."
        )
    return value


def create_moa(
    proposers: Sequence[ModelLike | Proposer],
    *,
    aggregator: ModelLike,
    layers: int = 3,
    checkpointer: Checkpointer = None,
    name: str = "moa",
    **options: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Classic Mixture-of-Agents: `layers - 1` proposer rounds, then one aggregator.

    Round 1 answers the conversation; in later rounds each proposer also sees
    every answer of the round before (through the summary prompt). The
    aggregator merges the last round. Calls per turn: `n * (layers - 1) + 1`.
    `**options` are the options of `MoAOptions` the baselines take: `prompts`,
    `temperature` and the call policy's (not the critique deadlines).

    Example:
        >>> moa = create_moa(["demo:a", "demo:b"], aggregator="demo:c", layers=2)
        >>> moa.invoke({"messages": [("user", "Hi")]})["usage"]["total"]["calls"]
        3
    """
    chosen = baseline_options("create_moa()", **options)
    layers = _check_count(layers, "layers", "layers=3 (two proposer rounds)")
    if layers < 2:
        raise ValueError(
            "`layers` counts the aggregator's layer too, so it must be >= 2; "
            "use create_single for one model."
        )
    return _build(
        resolve_agents(proposers),
        resolve_single(aggregator, "aggregator", "aggregator"),
        rounds=layers - 1,
        options=chosen,
        checkpointer=checkpointer,
        name=name,
    )


def create_self_moa(
    model: ModelLike,
    *,
    samples: int = 4,
    aggregator: ModelLike | None = None,
    checkpointer: Checkpointer = None,
    name: str = "self_moa",
    **options: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Self-MoA: `samples` answers of one model, merged by it (or `aggregator`).

    Sampling needs a temperature above 0 for the answers to differ; the
    default is 0.7. Calls per turn: `samples + 1`. `**options` as `create_moa`.
    """
    options.setdefault("temperature", 0.7)
    chosen = baseline_options("create_self_moa()", **options)
    samples = _check_count(samples, "samples", "samples=4")
    agents = resolve_agents(
        [Proposer(name=f"sample_{i}", model=model) for i in range(samples)]
    )
    # One model object for every sample: one client, one connection pool.
    shared = agents[0].model
    agents = tuple(Agent(agent.name, shared) for agent in agents)
    return _build(
        agents,
        resolve_single(aggregator or model, "aggregator", "aggregator"),
        rounds=1,
        options=chosen,
        checkpointer=checkpointer,
        name=name,
    )


def create_self_consistency(
    model: ModelLike,
    *,
    samples: int = 5,
    checkpointer: Checkpointer = None,
    name: str = "self_consistency",
    **options: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Self-consistency: `samples` answers of one model, and the majority's.

    A vote over short answers (see `majority_answer`: numbers by their value,
    other answers by their words), no merging call; ties go to the earliest
    sample. Sampling needs a temperature above 0 (default 0.7). Calls per
    turn: `samples`. `**options` as `create_moa`.

    Example:
        >>> vote = create_self_consistency("demo:a", samples=3)
        >>> vote.invoke({"messages": [("user", "Hi")]})["usage"]["total"]["calls"]
        3
    """
    options.setdefault("temperature", 0.7)
    chosen = baseline_options("create_self_consistency()", **options)
    samples = _check_count(samples, "samples", "samples=5")
    shared = resolve_single(model, "model", "sample_0").model
    agents = tuple(Agent(f"sample_{i}", shared) for i in range(samples))
    return _build(
        agents,
        None,
        rounds=1,
        options=chosen,
        checkpointer=checkpointer,
        name=name,
        vote=True,
    )


def create_single(
    model: ModelLike,
    *,
    checkpointer: Checkpointer = None,
    name: str = "single",
    **options: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """One model answering alone: the baseline every ensemble must beat.

    `**options` as `create_moa` (its `prompts` go unused: there is no merge).
    """
    return _build(
        (resolve_single(model, "model", "model"),),
        None,
        rounds=1,
        options=baseline_options("create_single()", **options),
        checkpointer=checkpointer,
        name=name,
    )
