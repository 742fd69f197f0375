"""Call counts per role and layer: N² + 2N + 1, then the stop decision and residual.

From layer 2 on, with early stopping on (the default), a layer adds a verdict
call and, unless the verdict stops the loop, a residual call.
"""

from __future__ import annotations

import pytest

from attention_moa_graph import create_attention_moa, estimate_cost
from attention_moa_graph.testing import ScriptedChatModel, count_tokens
from tests.helpers import fake_agents

pytestmark = pytest.mark.anyio


def expected_per_layer(n: int, layer: int) -> dict[str, int]:
    counts = {
        "draft": n,
        "cross_attention": n * (n - 1),
        "self_attention": n,
        "refine": n,
        "summary": 1,
    }
    if layer > 1:
        counts["verdict"] = counts["residual"] = 1
    return {role: c for role, c in counts.items() if c}


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("layers", [1, 2, 3])
async def test_each_layer_makes_the_papers_calls(n, layers, call_log):
    names = [f"agent_{i}" for i in range(n)]
    graph = create_attention_moa(
        fake_agents(names),
        aggregator=ScriptedChatModel(model_name="agg"),
        max_layers=layers,
    )
    result = await graph.ainvoke(
        {"messages": [("user", "What is 2 + 2?")]}, {"callbacks": [call_log]}
    )

    assert len(result["layers"]) == layers
    assert result["stop_reason"] == "max_layers"
    seen = call_log.by_layer_and_role()
    for layer in range(1, layers + 1):
        per_layer = {role: c for (lay, role), c in seen.items() if lay == layer}
        assert per_layer == expected_per_layer(n, layer)
        assert sum(per_layer.values()) == n * n + 2 * n + 1 + 2 * (layer > 1)
    total = sum(n * n + 2 * n + 1 + 2 * (layer > 1) for layer in range(1, layers + 1))
    assert len(call_log.calls) == total
    assert result["usage"]["total"]["calls"] == total


async def test_every_agent_critiques_every_peer_exactly_once(call_log):
    names = ["a", "b", "c", "d"]
    graph = create_attention_moa(
        fake_agents(names), aggregator="demo:chair", max_layers=1
    )
    await graph.ainvoke({"messages": [("user", "hi")]}, {"callbacks": [call_log]})

    pairs = sorted(
        (c["moa_agent"], c["moa_target"])
        for c in call_log.calls
        if c["moa_role"] == "cross_attention"
    )
    assert pairs == sorted((x, y) for x in names for y in names if x != y)
    selves = sorted(
        c["moa_agent"] for c in call_log.calls if c["moa_role"] == "self_attention"
    )
    assert selves == names
    assert all(
        "moa_target" not in c
        for c in call_log.calls
        if c["moa_role"] != "cross_attention"
    )


async def test_calls_carry_layer_role_and_agent_metadata(call_log):
    graph = create_attention_moa(
        fake_agents(["x", "y"]),
        aggregator=ScriptedChatModel(model_name="boss"),
        max_layers=2,
    )
    await graph.ainvoke({"messages": [("user", "hi")]}, {"callbacks": [call_log]})

    for call in call_log.calls:
        assert isinstance(call["moa_layer"], int) and call["moa_layer"] in (1, 2)
        assert call["moa_role"] in {
            "draft",
            "cross_attention",
            "self_attention",
            "refine",
            "summary",
            "residual",
            "verdict",
        }
        expected_agents = (
            {"aggregator"}
            if call["moa_role"] in ("summary", "residual", "verdict")
            else {"x", "y"}
        )
        assert call["moa_agent"] in expected_agents


async def test_usage_report_sums_the_models_token_counts():
    names = ["a", "b", "c"]
    agents = fake_agents(names)
    aggregator = ScriptedChatModel(model_name="agg")
    graph = create_attention_moa(agents, aggregator=aggregator, max_layers=2)
    result = await graph.ainvoke({"messages": [("user", "Explain tides.")]})

    usage = result["usage"]
    every_call = [c for p in agents for c in p.model.calls] + aggregator.calls
    expected_out = sum(count_tokens(c.reply) for c in every_call)
    expected_in = sum(count_tokens(m.text) for c in every_call for m in c.messages)
    assert usage["total"]["calls"] == len(every_call) == 34
    assert usage["total"]["output_tokens"] == expected_out
    assert usage["total"]["input_tokens"] == expected_in
    assert (
        usage["by_agent"]["a"]["calls"] == len(agents[0].model.calls) == 2 * (1 + 3 + 1)
    )
    assert usage["by_agent"]["aggregator"]["calls"] == 4  # summaries, verdict, residual
    assert usage["by_role"]["cross_attention"]["calls"] == 12
    assert sum(u["calls"] for u in usage["by_role"].values()) == 34
    assert [layer["usage"]["total"]["calls"] for layer in result["layers"]] == [16, 18]


@pytest.mark.parametrize(
    ("verdict", "calls", "stopped"),
    [
        ('{"better": true}', [16, 18], False),  # verdict, then the residual call
        ('{"better": false}', [16, 17], True),  # the verdict stops: no residual
        ("It is better.", [16, 18], False),  # no verdict: the loop goes on
    ],
)
async def test_the_stop_decision_costs_one_call_and_saves_the_residual(
    verdict, calls, stopped
):
    from tests.helpers import is_verdict_prompt, prompt_text

    def reply(messages):
        if is_verdict_prompt(messages):
            return verdict
        return f"merged {abs(hash(prompt_text(messages))) % 10**8}"

    graph = create_attention_moa(
        fake_agents(["a", "b", "c"]),
        aggregator=ScriptedChatModel(model_name="agg", reply=reply),
        max_layers=2,
    )
    result = await graph.ainvoke({"messages": [("user", "Explain tides.")]})
    assert [layer["usage"]["total"]["calls"] for layer in result["layers"]] == calls
    assert result["layers"][1]["stopped"] is stopped
    assert result["layers"][1]["verdict"] == verdict


async def test_converged_rounds_stop_without_a_verdict_or_residual_call():
    # The aggregator writes the same summary every layer: round 2 repeats round 1.
    graph = create_attention_moa(
        fake_agents(["a", "b", "c"]),
        aggregator=ScriptedChatModel(model_name="agg", reply=lambda m: "Same."),
        max_layers=3,
    )
    result = await graph.ainvoke({"messages": [("user", "Explain tides.")]})
    assert result["stop_reason"] == "early_stop" and len(result["layers"]) == 2
    second = result["layers"][1]
    assert second["converged"] and second["verdict"] is None
    assert second["usage"]["total"]["calls"] == 16
    assert "verdict" not in second["usage"]["by_role"]


async def test_usage_by_model_prices_a_run():
    agents = fake_agents(["a", "b"])
    graph = create_attention_moa(
        agents, aggregator=ScriptedChatModel(model_name="agg"), max_layers=1
    )
    result = await graph.ainvoke({"messages": [("user", "Price me.")]})
    by_model = result["usage"]["by_model"]
    assert sorted(by_model) == ["a", "agg", "b"]
    assert by_model["agg"]["calls"] == 1 and by_model["a"]["calls"] == 4

    cost = estimate_cost(result["usage"], {"a": (1.0, 2.0), "agg": (10.0, 20.0)})
    expected_a = (
        by_model["a"]["input_tokens"] * 1 + by_model["a"]["output_tokens"] * 2
    ) / 1e6
    assert cost["by_model"]["a"] == pytest.approx(expected_a)
    assert cost["unpriced"] == ["b"]
    assert cost["total"] == pytest.approx(sum(cost["by_model"].values()))
