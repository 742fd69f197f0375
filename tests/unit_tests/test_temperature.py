"""Temperatures reach each call as a call-time parameter: context > role > global."""

from __future__ import annotations

import pytest

from attention_moa_graph import create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import fake_agents

pytestmark = pytest.mark.anyio


def temperatures_by_role(call_log):
    seen: dict[str, set] = {}
    for call in call_log.calls:
        seen.setdefault(call["moa_role"], set()).add(call.get("temperature"))
    return seen


def build(**kwargs):
    return create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=ScriptedChatModel(model_name="agg"),
        max_layers=2,
        **kwargs,
    )


async def test_no_temperature_leaves_each_model_its_own(call_log):
    await build().ainvoke({"messages": [("user", "hi")]}, {"callbacks": [call_log]})
    seen = temperatures_by_role(call_log)
    # A verdict is a judgement: without a temperature set, it samples greedily.
    assert seen.pop("verdict") == {0.0}
    assert all(values == {None} for values in seen.values())


async def test_role_temperatures_override_the_global_one(call_log):
    graph = build(temperature=0.7, temperatures={"summary": 0.0, "residual": 0.1})
    await graph.ainvoke({"messages": [("user", "hi")]}, {"callbacks": [call_log]})
    assert temperatures_by_role(call_log) == {
        "draft": {0.7},
        "cross_attention": {0.7},
        "self_attention": {0.7},
        "refine": {0.7},
        "summary": {0.0},
        "residual": {0.1},
        "verdict": {0.7},
    }


async def test_the_context_temperature_applies_to_every_call_of_the_run(call_log):
    graph = build(temperature=0.7, temperatures={"summary": 0.0})
    await graph.ainvoke(
        {"messages": [("user", "hi")]},
        {"callbacks": [call_log]},
        context={"temperature": 0.2},
    )
    assert set().union(*temperatures_by_role(call_log).values()) == {0.2}


async def test_context_role_temperatures_apply_after_the_global_one(call_log):
    graph = build(temperature=0.7)
    await graph.ainvoke(
        {"messages": [("user", "hi")]},
        {"callbacks": [call_log]},
        context={"temperature": 0.3, "temperatures": {"summary": 0.0}},
    )
    seen = temperatures_by_role(call_log)
    assert seen["summary"] == {0.0}
    assert seen["draft"] == seen["refine"] == seen["residual"] == {0.3}


async def test_unknown_roles_in_the_context_are_rejected_before_any_call():
    import pytest

    with pytest.raises(ValueError, match="`temperatures` must map roles"):
        await build().ainvoke(
            {"messages": [("user", "hi")]}, context={"temperatures": {"critic": 0.1}}
        )


def test_a_batched_critique_samples_like_cross_attention_unless_set_apart():
    from attention_moa_graph._core.sampling import Sampling, role_params

    built = Sampling(temperatures={"cross_attention": 0.3}, max_tokens=100)
    params = role_params(built, {})
    assert params["critique"] == {"temperature": 0.3, "max_tokens": 100}
    own = role_params(built, {"temperatures": {"critique": 0.0}})
    assert own["critique"]["temperature"] == 0.0
    capped = role_params(Sampling(role_max_tokens={"critique": 90}), {})
    assert capped["critique"] == {"max_tokens": 90}


async def test_role_stops_end_that_roles_replies_only():
    echo = "Paris.\nThe user's latest message: What is the capital?"
    agents = [ScriptedChatModel(model_name=n, reply=lambda m: echo) for n in "ab"]
    graph = create_attention_moa(
        agents,
        aggregator=ScriptedChatModel(model_name="agg", reply=lambda m: echo),
        max_layers=1,
        role_stop={"draft": ("\nThe user's",)},
    )
    record = (await graph.ainvoke({"messages": [("user", "hi")]}))["layers"][0]
    assert set(record["drafts"].values()) == {"Paris."}
    assert record["summary"] == echo
    # A run's context adds its own, role by role.
    result = await graph.ainvoke(
        {"messages": [("user", "hi")]}, context={"role_stop": {"summary": ["\n"]}}
    )
    assert result["layers"][0]["summary"] == "Paris."
    assert set(result["layers"][0]["drafts"].values()) == {"Paris."}
