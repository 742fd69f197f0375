"""Guards: loops trimmed before anyone reads them, answers never cut or looping."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from attention_moa_graph import Proposer, astream_answer, create_attention_moa
from attention_moa_graph._core.guards import (
    final_answer,
    last_whole_sentences,
    settled,
    trim_repetition,
)
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import is_residual_prompt, is_verdict_prompt, prompt_text

pytestmark = pytest.mark.anyio

# Replies SmolLM2-135M wrote in real runs.
SEEN = [
    (
        "The answer is: The answer is: The answer is: The answer is: The answer is:",
        "The answer is:",
    ),
    (
        "Rayleigh scattering, which occurs when light is split into shorter, "
        "shorter, shorter, shorter, shorter, shorter, shorter",
        "Rayleigh scattering, which occurs when light is split into shorter,",
    ),
    (
        "The capital of France is Paris.\nThe answer is not in the fenced block.\n"
        "The answer is not in the fenced block.\nThe answer",
        "The capital of France is Paris.\nThe answer is not in the fenced block.",
    ),
    ("The answer is 8. The answer is 8. The answer is 8.", "The answer is 8."),
]


def loops(text: str) -> bool:
    """A line or sentence of 3+ words appearing 3+ times (the benchmark's check)."""
    units = [u.strip().lower() for u in re.split(r"(?<=[.!?])\s+|\n+", text)]
    counts = Counter(u for u in units if len(u.split()) >= 3)
    return any(n >= 3 for n in counts.values())


@pytest.mark.parametrize(("reply", "kept"), SEEN)
def test_a_looping_reply_is_cut_at_its_first_repetition(reply, kept):
    assert trim_repetition(reply) == (kept, True)
    assert reply.startswith(kept) and not loops(kept)


@pytest.mark.parametrize(
    "reply",
    [
        "Paris is the capital. Lyon is not.",
        "1. Yes.\n2. Yes.\n3. Yes.",  # short units may repeat
        "It is very, very cold.",
        "```python\nx = 1\nx = 1\n```",  # two equal lines are no loop
        "",
    ],
)
def test_ordinary_replies_are_left_alone(reply):
    assert trim_repetition(reply) == (reply, False)


def test_an_answer_cut_at_its_cap_ends_at_its_last_whole_sentence():
    assert last_whole_sentences("Light scatters. Blue scatters more because the") == (
        "Light scatters."
    )
    assert last_whole_sentences("No whole sentence here") == ""
    assert last_whole_sentences("Done.") == "Done."


def test_the_answer_is_the_first_complete_candidate():
    assert final_answer([("Blue because the", ["cut"]), ("Sun.", [])]) == "Sun."
    assert final_answer([("Blue. Because the", ["cut"]), ("Sun.", [])]) == "Blue."
    assert final_answer([("", []), ("NO_FURTHER_IMPROVEMENT", []), ("Ok", [])]) == "Ok"
    # Nothing complete: the first non-empty candidate, trimmed.
    assert final_answer([("a b c. a b c.", ["cut"])]) == "a b c."


@pytest.mark.parametrize(
    "reply",
    [reply for reply, _ in SEEN]
    + [
        "It is very, very cold. Very cold indeed. It is very, very cold.",
        "Light scatters. Blue light scatters more than red light does.",
        "a a a a a a a a a a",
    ],
)
def test_what_a_stream_passes_on_is_never_taken_back(reply):
    """As a reply is written, the settled part only grows, and it is always
    a prefix of the reply as finally trimmed: a stream never says a word the
    answer drops."""
    final, _ = trim_repetition(reply)
    passed = ""
    for end in range(len(reply) + 1):
        now = settled(reply[:end])
        assert now.startswith(passed), (reply[:end], passed, now)
        assert final.startswith(now), (reply[:end], now, final)
        passed = now
    assert (
        settled(reply[:20], near_cap=True)
        == settled(reply[:20])[: len(settled(reply[:20], near_cap=True))]
    )


def looping_agent(text: str) -> ScriptedChatModel:
    return ScriptedChatModel(model_name="loop", reply=lambda messages: text)


async def test_a_looping_draft_is_trimmed_before_critics_read_it_and_flagged():
    loop = "Tides come from the moon. Tides come from the moon. Tides come from"
    agents = [
        Proposer("a", looping_agent(loop)),
        Proposer("b", ScriptedChatModel(model_name="b")),
    ]
    chair = ScriptedChatModel(model_name="chair")
    graph = create_attention_moa(agents, aggregator=chair, max_layers=1)
    result = await graph.ainvoke({"messages": [("user", "Why tides?")]})
    record = result["layers"][0]
    assert record["drafts"]["a"] == "Tides come from the moon."
    assert record["flags"]["draft:a"] == ["repeated"]
    critic_prompts = [c.prompt for c in agents[1].model.calls]
    assert all(p.count("Tides come from the moon") <= 1 for p in critic_prompts)


def aggregator(residual: str):
    def reply(messages):
        if is_verdict_prompt(messages):
            return '{"better": true}'
        if is_residual_prompt(messages):
            return residual
        return "The summary says the moon pulls the sea. It is complete."

    return ScriptedChatModel(model_name="chair", reply=reply)


@pytest.mark.parametrize(
    ("residual", "answer"),
    [
        # A loop is cut at its first repetition.
        (
            "The moon pulls the sea. The moon pulls the sea. The moon pulls the sea.",
            "The moon pulls the sea.",
        ),
        # Cut at its cap: it ends at its last whole sentence.
        ("The moon pulls the sea. The sun also pulls it, but less because", None),
        # Cut with no whole sentence: the summary, which is complete, answers.
        (
            "The moon pulls the sea and the sun pulls it too but less because of",
            "The summary says the moon pulls the sea. It is complete.",
        ),
    ],
)
async def test_the_answer_never_loops_and_is_never_cut_mid_sentence(residual, answer):
    cap = 12
    graph = create_attention_moa(
        [Proposer(n, ScriptedChatModel(model_name=n)) for n in "ab"],
        aggregator=aggregator(residual),
        max_layers=2,
        early_stopping=False,
        role_max_tokens={"residual": cap},
    )
    question = {"messages": [("user", "Why tides?")]}
    result = await graph.ainvoke(question)
    expected = answer or "The moon pulls the sea."
    assert result["final_answer"] == expected
    assert result["messages"][-1].content == expected
    flags = result["layers"][-1]["flags"]
    assert ("cut" in flags.get("residual:aggregator", [])) == (
        len(residual.split()) > cap
    )
    # The stream gives the same answer, never a part it would take back.
    tokens = [
        event.data
        async for event in astream_answer(graph, question)
        if event.kind == "token"
    ]
    assert "".join(tokens) == expected
    assert not loops(expected)


def test_a_fake_model_stops_at_its_cap_as_a_real_one_does():
    model = ScriptedChatModel(reply=lambda messages: "one two three four five")
    reply = model.invoke("hi", max_tokens=3)
    assert reply.content == "one two three"
    assert reply.response_metadata["finish_reason"] == "length"
    assert model.invoke("hi").response_metadata["finish_reason"] == "stop"
    assert prompt_text(model.calls[0].messages) == "hi"


def test_a_reply_cut_inside_a_copied_marker_answers_with_its_whole_sentences():
    from attention_moa_graph._core.messages import strip_fences

    cut = "The answer is 7 days.\n\nThe user's request:\n<question-ee432930b0"
    assert final_answer([(strip_fences(cut), ["cut"])]) == "The answer is 7 days."
