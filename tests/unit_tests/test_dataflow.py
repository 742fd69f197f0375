"""Who sees what: each prompt holds exactly the material the method gives that stage.

Each agent has its own fake whose replies are unique (a digest of its prompt),
so a reply found in a later prompt proves where that prompt's material came from.
"""

from __future__ import annotations

import pytest

from attention_moa_graph import create_attention_moa
from attention_moa_graph.testing import ScriptedCall, ScriptedChatModel
from tests.helpers import fake_agents

pytestmark = pytest.mark.anyio

NAMES = ["a", "b", "c"]


def calls_of(models, **where) -> list[ScriptedCall]:
    found = []
    for model in models:
        for call in model.calls:
            if all(call.metadata.get(f"moa_{k}") == v for k, v in where.items()):
                found.append(call)
    return found


def one(models, **where) -> ScriptedCall:
    (call,) = calls_of(models, **where)
    return call


@pytest.fixture
async def run():
    agents = fake_agents(NAMES)
    aggregator = ScriptedChatModel(model_name="agg")
    graph = create_attention_moa(agents, aggregator=aggregator, max_layers=3)
    result = await graph.ainvoke({"messages": [("user", "Name three prime numbers.")]})
    return result, [p.model for p in agents] + [aggregator]


async def test_critique_prompt_shows_the_critics_and_the_targets_drafts_only(run):
    result, models = run
    for layer in (1, 2, 3):
        drafts = {
            n: one(models, layer=layer, role="draft", agent=n).reply for n in NAMES
        }
        assert result["layers"][layer - 1]["drafts"] == drafts
        for critic in NAMES:
            for target in NAMES:
                role = "self_attention" if critic == target else "cross_attention"
                where = {"layer": layer, "role": role, "agent": critic}
                if role == "cross_attention":
                    where["target"] = target
                prompt = one(models, **where).prompt
                for name, draft in drafts.items():
                    assert (draft in prompt) == (name in (critic, target)), (
                        f"layer {layer}: {critic} on {target} sees {name}'s draft"
                    )


async def test_refine_sees_its_own_draft_and_only_the_suggestions_addressed_to_it(run):
    result, models = run
    for layer in (1, 2, 3):
        record = result["layers"][layer - 1]
        for agent in NAMES:
            prompt = one(models, layer=layer, role="refine", agent=agent).prompt
            assert record["drafts"][agent] in prompt
            for other in NAMES:
                if other != agent:
                    assert record["drafts"][other] not in prompt
            for target, by_critic in record["critiques"].items():
                for critique in by_critic.values():
                    assert (critique in prompt) == (target == agent)
            assert len(record["critiques"][agent]) == len(NAMES)
            # Suggestions are listed anonymously: no critic's name is attached.
            assert "suggestion-1" in prompt and "suggestion-3" in prompt
            assert "suggestion-4" not in prompt


async def test_summary_merges_the_refined_answers(run):
    result, models = run
    for layer in (1, 2, 3):
        record = result["layers"][layer - 1]
        summary = one(models, layer=layer, role="summary")
        assert summary.reply == record["summary"]
        for agent in NAMES:
            assert record["refined"][agent] in summary.prompt
            assert record["drafts"][agent] not in summary.prompt


async def test_residual_sees_every_earlier_output_and_the_new_summary(run):
    result, models = run
    records = result["layers"]
    assert calls_of(models, layer=1, role="residual") == []
    assert records[0]["output"] == records[0]["summary"]
    for layer in (2, 3):
        residual = one(models, layer=layer, role="residual")
        for earlier in records[: layer - 1]:
            assert earlier["output"] in residual.prompt
        assert records[layer - 1]["summary"] in residual.prompt
        # History holds layer outputs only, never an earlier layer's summary
        # that the residual agent replaced.
        if layer == 3:
            assert records[1]["summary"] not in residual.prompt
        assert records[layer - 1]["output"] == residual.reply


async def test_next_layer_drafts_see_the_previous_layer_output(run):
    result, models = run
    records = result["layers"]
    for call in calls_of(models, layer=1, role="draft"):
        assert [m.type for m in call.messages] == ["human"]
    for layer in (2, 3):
        for agent in NAMES:
            prompt = one(models, layer=layer, role="draft", agent=agent).prompt
            assert records[layer - 2]["output"] in prompt
            if layer == 3:
                assert records[0]["output"] not in prompt
    assert result["final_answer"] == records[-1]["output"]
    assert result["messages"][-1].content == result["final_answer"]


async def test_each_call_uses_its_own_agents_model(run):
    _, models = run
    *agent_models, aggregator = models
    for name, model in zip(NAMES, agent_models, strict=True):
        assert model.calls, name
        assert {c.metadata["moa_agent"] for c in model.calls} == {name}
    assert {c.metadata["moa_role"] for c in aggregator.calls} == {
        "summary",
        "verdict",
        "residual",
    }


async def test_a_separate_residual_model_makes_the_residual_calls():
    agents = fake_agents(NAMES)
    summarizer = ScriptedChatModel(model_name="sum")
    synthesizer = ScriptedChatModel(model_name="syn")
    graph = create_attention_moa(
        agents, aggregator=summarizer, residual_model=synthesizer, max_layers=2
    )
    await graph.ainvoke({"messages": [("user", "hi")]})
    assert [c.metadata["moa_role"] for c in summarizer.calls] == ["summary", "summary"]
    # The residual agent makes the stop decision too.
    roles = [c.metadata["moa_role"] for c in synthesizer.calls]
    assert roles == ["verdict", "residual"]
    assert synthesizer.calls[0].metadata["moa_agent"] == "residual"
