"""Each ablation switch removes exactly its calls, at build time or for one run."""

from __future__ import annotations

import pytest

from attention_moa_graph import create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import fake_agents

pytestmark = pytest.mark.anyio

N = 3


def roles_per_layer(call_log, layer):
    return {
        role: count
        for (lay, role), count in call_log.by_layer_and_role().items()
        if lay == layer
    }


CASES = {
    "full": (
        {},
        {
            "draft": 3,
            "cross_attention": 6,
            "self_attention": 3,
            "refine": 3,
            "summary": 1,
            "verdict": 1,
            "residual": 1,
        },
    ),
    "no_cross": (
        {"cross_attention": False},
        {
            "draft": 3,
            "self_attention": 3,
            "refine": 3,
            "summary": 1,
            "verdict": 1,
            "residual": 1,
        },
    ),
    "no_self": (
        {"self_attention": False},
        {
            "draft": 3,
            "cross_attention": 6,
            "refine": 3,
            "summary": 1,
            "verdict": 1,
            "residual": 1,
        },
    ),
    "plain_moa": (
        {"cross_attention": False, "self_attention": False},
        {"draft": 3, "summary": 1, "verdict": 1, "residual": 1},
    ),
    "no_residual": (
        {"residual": False},
        {
            "draft": 3,
            "cross_attention": 6,
            "self_attention": 3,
            "refine": 3,
            "summary": 1,
        },
    ),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("where", ["build", "context"])
async def test_switching_a_stage_off_drops_its_calls(case, where, call_log):
    switches, layer_two = CASES[case]
    if where == "build":
        graph = create_attention_moa(
            fake_agents(["a", "b", "c"]),
            aggregator=ScriptedChatModel(model_name="agg"),
            max_layers=2,
            **switches,
        )
        context = None
    else:
        graph = create_attention_moa(
            fake_agents(["a", "b", "c"]),
            aggregator=ScriptedChatModel(model_name="agg"),
            max_layers=2,
        )
        context = switches
    result = await graph.ainvoke(
        {"messages": [("user", "hi")]}, {"callbacks": [call_log]}, context=context
    )

    layer_one = {k: v for k, v in layer_two.items() if k not in ("residual", "verdict")}
    assert roles_per_layer(call_log, 1) == layer_one
    assert roles_per_layer(call_log, 2) == layer_two
    for record in result["layers"]:
        if "refine" not in layer_two:
            assert record["refined"] == {} and record["critiques"] == {}
        if case == "no_cross":
            assert all(list(by) == [t] for t, by in record["critiques"].items())
        if case == "no_self":
            assert all(t not in by for t, by in record["critiques"].items())


async def test_plain_moa_summarizes_the_drafts():
    aggregator = ScriptedChatModel(model_name="agg")
    graph = create_attention_moa(
        fake_agents(["a", "b", "c"]),
        aggregator=aggregator,
        max_layers=1,
        cross_attention=False,
        self_attention=False,
    )
    result = await graph.ainvoke({"messages": [("user", "hi")]})
    (summary,) = aggregator.calls
    for draft in result["layers"][0]["drafts"].values():
        assert draft in summary.prompt


async def test_without_residual_the_answer_is_the_last_summary():
    graph = create_attention_moa(
        fake_agents(["a", "b"]), aggregator="demo:chair", max_layers=3, residual=False
    )
    result = await graph.ainvoke({"messages": [("user", "hi")]})
    assert len(result["layers"]) == 3
    assert all(r["residual"] is None for r in result["layers"])
    assert result["final_answer"] == result["layers"][-1]["summary"]


async def test_a_single_agent_runs_with_self_attention_only(call_log):
    graph = create_attention_moa(
        fake_agents(["solo"]),
        aggregator="demo:chair",
        max_layers=1,
        cross_attention=False,
    )
    await graph.ainvoke({"messages": [("user", "hi")]}, {"callbacks": [call_log]})
    assert roles_per_layer(call_log, 1) == {
        "draft": 1,
        "self_attention": 1,
        "refine": 1,
        "summary": 1,
    }


async def test_context_cannot_switch_on_a_stage_the_graph_was_built_without():
    agents = fake_agents(["a", "b"])
    graph = create_attention_moa(agents, aggregator="demo:chair", cross_attention=False)
    with pytest.raises(ValueError, match="cross_attention=True"):
        await graph.ainvoke(
            {"messages": [("user", "hi")]}, context={"cross_attention": True}
        )
    assert all(not p.model.calls for p in agents)


async def test_context_max_layers_lowers_the_depth():
    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator="demo:chair",
        max_layers=3,
        early_stopping=False,
    )
    result = await graph.ainvoke(
        {"messages": [("user", "hi")]}, context={"max_layers": 1}
    )
    assert len(result["layers"]) == 1


async def test_context_can_choose_the_models_of_one_run(call_log):
    built = fake_agents(["a", "b"])
    graph = create_attention_moa(built, aggregator="demo:chair", max_layers=2)
    result = await graph.ainvoke(
        {"messages": [("user", "hi")]},
        {"callbacks": [call_log]},
        context={
            "proposer_models": ["demo:xena", "demo:yuri", "demo:zoe"],
            "aggregator_model": "demo:boss",
        },
    )
    assert all(not p.model.calls for p in built)
    first = result["layers"][0]
    assert sorted(first["drafts"]) == ["proposer_0", "proposer_1", "proposer_2"]
    assert first["drafts"]["proposer_1"].startswith("[demo] Yuri's")
    assert result["final_answer"].startswith("[demo] Boss's")
    assert call_log.count(moa_layer=1, moa_role="cross_attention") == 6
    # The next run without a context uses the built models again.
    again = await graph.ainvoke(
        {"messages": [("user", "hi")]}, context={"max_layers": 1}
    )
    assert sorted(again["layers"][0]["drafts"]) == ["a", "b"]


@pytest.mark.parametrize(
    "context, message",
    [
        ({"proposer_models": ["nosuchprovider:x", "demo:b"]}, "cannot resolve model"),
        ({"proposer_models": ["demo:solo"]}, "at least two proposers"),
        ({"proposer_models": []}, "list of 1 to 16"),
        ({"aggregator_model": "nosuchprovider:y"}, "aggregator_model"),
    ],
)
async def test_bad_per_run_models_fail_before_any_call(context, message):
    built = fake_agents(["a", "b"])
    graph = create_attention_moa(built, aggregator="demo:chair")
    with pytest.raises(ValueError, match=message):
        await graph.ainvoke({"messages": [("user", "hi")]}, context=context)
    assert all(not p.model.calls for p in built)
