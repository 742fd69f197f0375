"""Adaptive compute: stop when drafts agree, fewer critiques, a token budget."""

from __future__ import annotations

import pytest

from attention_moa_graph import Proposer, create_attention_moa
from attention_moa_graph._core.stop import drafts_agree
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import prompt_text

pytestmark = pytest.mark.anyio
QUESTION = {"messages": [("user", "What is the capital of France?")]}


def answering(text: str, name: str) -> Proposer:
    """An agent whose drafts are `text`; its other replies name it."""

    def reply(messages):
        prompt = prompt_text(messages)
        if "own-answer" in prompt:
            return f"{name} on it: {len(prompt)}"
        return text

    return Proposer(name, ScriptedChatModel(model_name=name, reply=reply))


def chair() -> ScriptedChatModel:
    return ScriptedChatModel(model_name="chair", reply=lambda m: "Paris.")


async def test_drafts_that_agree_end_the_run_after_their_summary():
    agents = [
        answering("The capital of France is Paris.", "a"),
        answering("the capital of france is paris", "b"),
        answering("The capital of France is PARIS!", "c"),
    ]
    graph = create_attention_moa(agents, aggregator=chair(), agreement=1.0)
    result = await graph.ainvoke(QUESTION)
    assert result["stop_reason"] == "agreement"
    assert result["usage"]["total"]["calls"] == 3 + 1  # N drafts and the summary
    (record,) = result["layers"]
    assert record["agreed"] and record["stopped"]
    assert record["critiques"] == {} and record["refined"] == {}
    assert result["final_answer"] == "Paris."


async def test_drafts_alike_above_the_threshold_agree_and_others_do_not():
    alike = [
        answering("The capital of France is Paris.", "a"),
        answering("The capital of France is Paris, of course.", "b"),
    ]
    assert (
        await create_attention_moa(
            alike, aggregator=chair(), agreement=0.8, max_layers=1
        ).ainvoke(QUESTION)
    )["stop_reason"] == "agreement"
    apart = [answering("It is Paris.", "a"), answering("I think it is Lyon.", "b")]
    result = await create_attention_moa(
        apart, aggregator=chair(), agreement=0.8, max_layers=1
    ).ainvoke(QUESTION)
    assert result["stop_reason"] == "max_layers"
    assert result["usage"]["total"]["calls"] == 2 + 4 + 2 + 1


async def test_without_the_option_agreeing_drafts_are_critiqued_as_in_the_paper():
    agents = [answering("Paris.", "a"), answering("Paris.", "b")]
    result = await create_attention_moa(
        agents, aggregator=chair(), max_layers=1
    ).ainvoke(QUESTION)
    assert result["usage"]["total"]["calls"] == 2 + 4 + 2 + 1
    # A run may switch it on through its context.
    graph = create_attention_moa(agents, aggregator=chair(), max_layers=1)
    result = await graph.ainvoke(QUESTION, context={"agreement": 1.0})
    assert result["stop_reason"] == "agreement"


async def test_agreement_in_a_later_layer_skips_its_verdict_and_residual():
    turns = {"a": iter(["Paris.", "Paris."]), "b": iter(["Lyon.", "Paris."])}

    def drafting(name):
        def reply(messages):
            if "own-answer" in prompt_text(messages):
                return f"{name} reviews"
            return next(turns[name])

        return Proposer(name, ScriptedChatModel(model_name=name, reply=reply))

    graph = create_attention_moa(
        [drafting("a"), drafting("b")], aggregator=chair(), agreement=1.0
    )
    result = await graph.ainvoke(QUESTION)
    assert [r["agreed"] for r in result["layers"]] == [False, True]
    assert result["stop_reason"] == "agreement"
    second = result["layers"][1]["usage"]["by_role"]
    assert set(second) == {"draft", "summary"}


async def test_each_agent_critiques_the_next_k_peers_in_turn():
    agents = [answering(f"draft {n}", n) for n in "abcd"]
    graph = create_attention_moa(
        agents, aggregator=chair(), max_layers=1, critique_peers=1
    )
    result = await graph.ainvoke(QUESTION)
    critiques = result["layers"][0]["critiques"]
    cross = {(c, t) for t, by in critiques.items() for c in by if c != t}
    assert cross == {("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")}
    by_role = result["usage"]["by_role"]
    assert by_role["cross_attention"]["calls"] == 4 * 1  # N*k, not N(N-1)
    assert by_role["self_attention"]["calls"] == 4


async def test_the_loop_ends_after_the_layer_that_spends_the_token_budget():
    agents = [answering("Paris, probably.", "a"), answering("Lyon, maybe.", "b")]
    graph = create_attention_moa(
        agents, aggregator=chair(), max_layers=3, early_stopping=False
    )
    full = await graph.ainvoke(QUESTION)
    assert len(full["layers"]) == 3 and full["stop_reason"] == "max_layers"
    first = full["layers"][0]["usage"]["total"]["total_tokens"]
    capped = await graph.ainvoke(QUESTION, context={"token_budget": first})
    assert len(capped["layers"]) == 1
    assert capped["stop_reason"] == "token_budget"
    later = await graph.ainvoke(QUESTION, context={"token_budget": first + 1})
    assert len(later["layers"]) == 2 and later["stop_reason"] == "token_budget"


def test_short_answers_ending_on_one_number_agree_long_or_different_ones_do_not():
    assert drafts_agree(["The answer is 8.", "8", "It is 8."], 1.0)
    assert not drafts_agree(["The answer is 8.", "9"], 1.0)
    long = "Counting the red apples one by one in the big basket we get 8."
    assert not drafts_agree([long, "8"], 1.0)
    assert not drafts_agree(["Paris.", "The capital is Paris."], 1.0)
