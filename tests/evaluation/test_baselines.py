"""The comparison ensembles: call counts, dataflow, metadata, turns, failures."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from attention_moa_graph import Proposer
from attention_moa_graph._calls.errors import AgentFailedError
from attention_moa_graph.evaluation.baselines import (
    create_moa,
    create_self_moa,
    create_single,
)
from attention_moa_graph.testing import ScriptedChatModel

pytestmark = pytest.mark.anyio


def agents(*names: str) -> list[Proposer]:
    return [Proposer(n, ScriptedChatModel(model_name=n)) for n in names]


@pytest.mark.parametrize(("n", "layers"), [(2, 2), (3, 3), (4, 4)])
async def test_moa_makes_n_times_layers_minus_one_plus_one_calls(
    n: int, layers: int
) -> None:
    proposers = agents(*[f"p{i}" for i in range(n)])
    aggregator = ScriptedChatModel(model_name="agg")
    graph = create_moa(proposers, aggregator=aggregator, layers=layers)
    result = await graph.ainvoke({"messages": [("user", "What is MoA?")]})
    assert result["usage"]["total"]["calls"] == n * (layers - 1) + 1
    assert result["usage"]["by_role"]["draft"]["calls"] == n * (layers - 1)
    assert len(aggregator.calls) == 1
    assert result["final_answer"] == aggregator.calls[0].reply


def test_later_rounds_see_every_answer_of_the_round_before() -> None:
    proposers = agents("a", "b")
    aggregator = ScriptedChatModel(model_name="agg")
    create_moa(proposers, aggregator=aggregator, layers=3).invoke(
        {"messages": [("user", "Explain tides.")]}
    )
    round_one = [
        c.reply
        for p in proposers
        for c in p.model.calls
        if c.metadata["moa_layer"] == 1
    ]
    assert len(round_one) == 2
    for proposer in proposers:
        first, second = sorted(
            proposer.model.calls, key=lambda c: c.metadata["moa_layer"]
        )
        expected = {"moa_role": "draft", "moa_layer": 1, "moa_agent": proposer.name}
        assert expected.items() <= first.metadata.items()
        assert not any(answer in first.prompt for answer in round_one)
        assert all(answer in second.prompt for answer in round_one)
        assert "Explain tides." in second.prompt
    final = aggregator.calls[0]
    assert final.metadata["moa_role"] == "summary" and final.metadata["moa_layer"] == 3
    round_two = [
        c.reply
        for p in proposers
        for c in p.model.calls
        if c.metadata["moa_layer"] == 2
    ]
    assert all(answer in final.prompt for answer in round_two)


async def test_self_moa_samples_one_model_then_merges_with_it() -> None:
    model = ScriptedChatModel(model_name="solo")
    graph = create_self_moa(model, samples=3)
    result = await graph.ainvoke(
        {"messages": [("user", "Hi")]}, context={"temperature": 0.2}
    )
    assert result["usage"]["total"]["calls"] == 4
    agents_seen = sorted(c.metadata["moa_agent"] for c in model.calls)
    assert agents_seen == ["aggregator", "sample_0", "sample_1", "sample_2"]


def test_single_is_one_call_and_usage_resets_each_turn() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    model = ScriptedChatModel(model_name="one")
    graph = create_single(model, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    first = graph.invoke({"messages": [("user", "Q1")]}, config)
    second = graph.invoke({"messages": [("user", "Q2")]}, config)
    assert first["usage"]["total"]["calls"] == second["usage"]["total"]["calls"] == 1
    assert [type(m) for m in second["messages"]] == [HumanMessage, AIMessage] * 2
    assert (
        "Q1" in model.calls[1].prompt and first["final_answer"] in model.calls[1].prompt
    )


def test_a_dead_proposer_is_dropped_and_a_broken_one_stops_the_run() -> None:
    from attention_moa_graph import DEFAULT_RETRY_POLICY
    from attention_moa_graph._calls.errors import AgentsExhaustedError

    def overloaded(messages):
        raise TimeoutError("upstream overloaded")

    proposers = [*agents("ok"), Proposer("down", ScriptedChatModel(reply=overloaded))]
    fast = DEFAULT_RETRY_POLICY._replace(initial_interval=0.001, max_interval=0.001)
    graph = create_moa(
        proposers, aggregator=ScriptedChatModel(), layers=2, retry_policy=fast
    )
    result = graph.invoke({"messages": [("user", "Hi")]})
    assert result["usage"]["by_agent"].keys() == {"ok", "aggregator"}
    alone = create_moa(
        [proposers[1]], aggregator=ScriptedChatModel(), layers=2, retry_policy=fast
    )
    with pytest.raises(AgentsExhaustedError):
        alone.invoke({"messages": [("user", "Hi")]})

    def refuses(messages):
        raise ValueError("bad request")

    broken = create_moa(
        [Proposer("bad", ScriptedChatModel(reply=refuses))],
        aggregator=ScriptedChatModel(),
        layers=2,
    )
    with pytest.raises(AgentFailedError):
        broken.invoke({"messages": [("user", "Hi")]})


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: create_moa(["demo:a"], aggregator="demo:b", layers=1),
            "aggregator's layer",
        ),
        (lambda: create_moa(["demo:a"], aggregator="demo:b", layers=0), ">= 1"),
        (lambda: create_self_moa("demo:a", samples=0), "samples"),
        (lambda: create_moa([], aggregator="demo:b"), "empty"),
    ],
)
def test_bad_arguments_fail_at_build_time(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_self_consistency_answers_with_the_majority_of_its_samples():
    from attention_moa_graph.evaluation import create_self_consistency
    from attention_moa_graph.testing import ScriptedChatModel

    replies = iter(["It is 12.", "13", "Twelve, so 12.", "13.", "12"])
    model = ScriptedChatModel(model_name="m", reply=lambda messages: next(replies))
    graph = create_self_consistency(model, samples=5)
    result = graph.invoke({"messages": [("user", "What is 3 x 4?")]})
    assert result["final_answer"] == "It is 12."  # 12 three times, 13 twice
    assert result["usage"]["total"]["calls"] == 5
    # No one sample's call is the answer: the vote is.
    assert all(call.metadata.get("moa_final") is not True for call in model.calls)


def test_a_baselines_looping_reply_is_trimmed_like_the_ensembles():
    from benchmarks.quality_cost import loops

    looping = "The answer is 8 days.\n\n" * 6 + "The answer is"
    graph = create_moa(
        ["demo:a", "demo:b"],
        aggregator=ScriptedChatModel(reply=lambda messages: looping),
        layers=2,
    )
    answer = graph.invoke({"messages": [("user", "How many days?")]})["final_answer"]
    assert answer.startswith("The answer is 8 days.") and not loops(answer)
