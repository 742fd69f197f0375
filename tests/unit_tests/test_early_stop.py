"""The early stop: the verdict (default) and the stop signal, both parsed strictly.

With `stop_decision="verdict"` the loop stops after converged rounds or a
verdict of `{"better": false}`; with `"signal"` when the residual reply is the
stop signal itself, as in the authors' scripts.
"""

from __future__ import annotations

import pytest

from attention_moa_graph import (
    STOP_SIGNAL,
    MoAError,
    Proposer,
    astream_answer,
    create_attention_moa,
    is_stop_signal,
)
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import (
    aggregator_stopping_at,
    fake_agents,
    is_residual_prompt,
    is_verdict_prompt,
    prompt_text,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "reply",
    [
        STOP_SIGNAL,
        f"  {STOP_SIGNAL}\n",
        STOP_SIGNAL.lower(),
        STOP_SIGNAL.title(),
        f"**{STOP_SIGNAL}**",
        f"_{STOP_SIGNAL}_",
        f"`{STOP_SIGNAL}`",
        f"{STOP_SIGNAL}.",
        f'"{STOP_SIGNAL}"',
        f"[{STOP_SIGNAL}]!",
        f"*** {STOP_SIGNAL} ***",
        f"«{STOP_SIGNAL}»",
        "NO_\u200bFURTHER_\u200dIMPROVEMENT",  # zero-width space and joiner
        "\ufeffNO_FURTHER_IMPROVEMENT\u2060",  # byte-order mark, word joiner
        "ＮＯ＿ＦＵＲＴＨＥＲ＿ＩＭＰＲＯＶＥＭＥＮＴ",  # full-width forms
        f"{STOP_SIGNAL}\n\nThe answer is 4.",  # the signal, then the answer restated
        f"**{STOP_SIGNAL}**\nRound 2 stands.",
    ],
)
def test_the_signal_itself_is_a_stop(reply):
    assert is_stop_signal(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "   ",
        f"The latest round adds nothing. {STOP_SIGNAL}",
        f"{STOP_SIGNAL} because round 3 repeats round 2",
        f"I will not reply {STOP_SIGNAL}; here is the answer: 42.",
        f"Final answer:\n\n{STOP_SIGNAL}\n\nActually, the answer is 7.",
        STOP_SIGNAL.replace("_", " "),
        f"{STOP_SIGNAL}{STOP_SIGNAL}",
        "STOP",
        "no further improvement",
    ],
)
def test_text_that_mentions_the_signal_is_not_a_stop(reply):
    assert not is_stop_signal(reply)


def agg_model(stop_at: int, otherwise: str = "") -> ScriptedChatModel:
    return ScriptedChatModel(
        model_name="agg", reply=aggregator_stopping_at(stop_at, otherwise)
    )


@pytest.mark.parametrize("stop_at", [2, 3, 4])
async def test_stops_at_the_layer_whose_residual_gives_the_signal(stop_at, call_log):
    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=agg_model(stop_at),
        max_layers=5,
        stop_decision="signal",
    )
    result = await graph.ainvoke(
        {"messages": [("user", "hi")]}, {"callbacks": [call_log]}
    )

    assert result["stop_reason"] == "early_stop"
    assert len(result["layers"]) == stop_at
    assert [r["stopped"] for r in result["layers"]] == [False] * (stop_at - 1) + [True]
    last = result["layers"][-1]
    assert last["residual"] == STOP_SIGNAL
    assert result["final_answer"] == last["summary"] == last["output"]
    assert max(c["moa_layer"] for c in call_log.calls) == stop_at


async def test_the_residual_prompt_offers_the_stop_signal_only_when_enabled():
    for early_stopping in (True, False):
        aggregator = ScriptedChatModel(model_name="agg")
        graph = create_attention_moa(
            fake_agents(["a", "b"]),
            aggregator=aggregator,
            max_layers=2,
            early_stopping=early_stopping,
            stop_decision="signal",
        )
        await graph.ainvoke({"messages": [("user", "hi")]})
        (residual,) = [c for c in aggregator.calls if is_residual_prompt(c.messages)]
        assert (STOP_SIGNAL in residual.prompt) == early_stopping


async def test_without_early_stopping_every_layer_runs():
    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=agg_model(2),
        max_layers=4,
        early_stopping=False,
    )
    result = await graph.ainvoke({"messages": [("user", "hi")]})

    assert result["stop_reason"] == "max_layers"
    assert len(result["layers"]) == 4
    assert not any(r["stopped"] for r in result["layers"])
    # The signal is no answer: the layer's summary stands as its output.
    for record in result["layers"][1:]:
        assert record["residual"] == STOP_SIGNAL
        assert record["output"] == record["summary"]
    assert STOP_SIGNAL not in result["final_answer"]


async def test_context_can_switch_early_stopping_off_for_one_run():
    graph = create_attention_moa(
        fake_agents(["a", "b"]), aggregator=agg_model(2), max_layers=3
    )
    result = await graph.ainvoke(
        {"messages": [("user", "hi")]}, context={"early_stopping": False}
    )
    assert len(result["layers"]) == 3
    assert result["stop_reason"] == "max_layers"


async def test_a_long_reply_mentioning_the_signal_is_used_as_the_answer():
    mention = f"Round 2 is better than round 1, so no {STOP_SIGNAL} here: 4."
    aggregator = ScriptedChatModel(
        model_name="agg",
        reply=lambda m: mention if is_residual_prompt(m) else "summary text",
    )
    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=aggregator,
        max_layers=3,
        stop_decision="signal",
    )
    result = await graph.ainvoke({"messages": [("user", "hi")]})

    assert result["stop_reason"] == "max_layers"
    assert len(result["layers"]) == 3
    assert result["final_answer"] == mention


@pytest.mark.parametrize("decision", ["signal", "verdict"])
@pytest.mark.parametrize(
    "reply", [f"{STOP_SIGNAL}\n\nThe answer is 4.", f"The answer is 4.\n{STOP_SIGNAL}"]
)
async def test_the_signal_with_an_answer_beside_it_never_reaches_the_answer(
    decision, reply
):
    aggregator = ScriptedChatModel(
        model_name="agg",
        reply=lambda m: reply if is_residual_prompt(m) else "The summary says 4.",
    )
    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=aggregator,
        max_layers=2,
        stop_decision=decision,
    )
    result = await graph.ainvoke({"messages": [("user", "hi")]})
    assert STOP_SIGNAL not in result["final_answer"]
    assert "4." in result["final_answer"]
    streamed = astream_answer(graph, {"messages": [("user", "hi")]})
    tokens = [e.data async for e in streamed if e.kind == "token"]
    assert "".join(tokens) == result["final_answer"]
    if reply.startswith(STOP_SIGNAL):
        # The signal decides: the round is no better, the summary stands.
        assert result["final_answer"] == "The summary says 4."


async def test_one_layer_answers_with_its_summary_and_never_calls_the_residual(
    call_log,
):
    graph = create_attention_moa(
        fake_agents(["a", "b"]), aggregator=agg_model(1), max_layers=1
    )
    result = await graph.ainvoke(
        {"messages": [("user", "hi")]}, {"callbacks": [call_log]}
    )
    assert call_log.count(moa_role="residual") == 0
    assert result["stop_reason"] == "max_layers"
    assert result["final_answer"] == result["layers"][0]["summary"]
    assert result["layers"][0]["residual"] is None


@pytest.mark.parametrize(
    ("reply", "better"),
    [
        ('{"better": false}', False),
        ('{"better":true}', True),
        ('  {\n  "better": false\n}\n', False),
        ('```json\n{"better": false}\n```', False),
        ('{"better": "false"}', None),
        ('{"better": false, "why": "same"}', None),
        ("Not better.", None),
        ('The verdict: {"better": false}', None),
        ("", None),
        (STOP_SIGNAL, None),
    ],
)
def test_a_verdict_is_parsed_strictly(reply, better):
    from attention_moa_graph._core.stop import parse_verdict

    assert parse_verdict(reply) is better


@pytest.mark.parametrize("stop_at", [2, 3])
async def test_a_verdict_of_no_better_stops_before_the_residual_call(stop_at, call_log):
    aggregator = agg_model(stop_at)
    graph = create_attention_moa(
        fake_agents(["a", "b"]), aggregator=aggregator, max_layers=4
    )
    result = await graph.ainvoke(
        {"messages": [("user", "hi")]}, {"callbacks": [call_log]}
    )
    assert result["stop_reason"] == "early_stop"
    assert len(result["layers"]) == stop_at
    last = result["layers"][-1]
    assert last["verdict"] == '{"better": false}' and last["residual"] is None
    assert result["final_answer"] == last["summary"] == last["output"]
    assert call_log.count(moa_layer=stop_at, moa_role="residual") == 0
    assert call_log.count(moa_layer=stop_at, moa_role="verdict") == 1
    # The residual prompt never offers the signal in this mode.
    residuals = [c for c in aggregator.calls if is_residual_prompt(c.messages)]
    assert len(residuals) == stop_at - 2
    assert all(STOP_SIGNAL not in c.prompt for c in residuals)


async def test_the_signal_is_no_stop_and_no_answer_when_verdicts_decide():
    aggregator = ScriptedChatModel(
        model_name="agg",
        reply=lambda m: (
            STOP_SIGNAL
            if is_residual_prompt(m)
            else f"summary {abs(hash(prompt_text(m))) % 10**8}"
        ),
    )
    graph = create_attention_moa(
        fake_agents(["a", "b"]), aggregator=aggregator, max_layers=3
    )
    result = await graph.ainvoke({"messages": [("user", "hi")]})
    assert result["stop_reason"] == "max_layers" and len(result["layers"]) == 3
    for record in result["layers"][1:]:
        assert record["residual"] == STOP_SIGNAL
        assert record["output"] == record["summary"]


async def test_a_failed_verdict_call_decides_nothing():
    def reply(messages):
        if is_verdict_prompt(messages):
            raise ValueError("this server takes no response_format")
        return f"text {abs(hash(prompt_text(messages))) % 10**8}"

    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=ScriptedChatModel(model_name="agg", reply=reply),
        max_layers=2,
    )
    result = await graph.ainvoke({"messages": [("user", "hi")]})
    second = result["layers"][1]
    assert not second["stopped"] and second["residual"] is not None
    assert second["verdict"].startswith("(no verdict: ValueError")


async def test_the_verdict_sees_the_question_and_the_two_rounds_fenced():
    aggregator = agg_model(9)
    graph = create_attention_moa(
        fake_agents(["a", "b"]), aggregator=aggregator, max_layers=3
    )
    result = await graph.ainvoke({"messages": [("user", "Why is ice slippery?")]})
    verdicts = [c for c in aggregator.calls if is_verdict_prompt(c.messages)]
    assert len(verdicts) == 2
    for layer, call in zip((2, 3), verdicts, strict=True):
        record = result["layers"][layer - 1]
        previous = result["layers"][layer - 2]["output"]
        assert f"<round-{layer - 1}-" in call.prompt and previous in call.prompt
        assert f"<round-{layer}-" in call.prompt and record["summary"] in call.prompt
        assert "Why is ice slippery?" in call.prompt


@pytest.mark.parametrize("decision", ["signal", "verdict"])
async def test_a_summary_that_is_the_signal_is_never_the_answer(decision):
    # The summary agent writes the signal and the residual agent copies it.
    def reply(messages):
        if is_verdict_prompt(messages):
            return '{"better": true}'
        return f"**{STOP_SIGNAL}**"

    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=ScriptedChatModel(model_name="agg", reply=reply),
        max_layers=2,
        stop_decision=decision,
    )
    result = await graph.ainvoke({"messages": [("user", "hi")]})
    first, second = result["layers"]
    assert not is_stop_signal(first["output"])
    assert first["output"] == first["refined"]["a"]  # no earlier round to fall back on
    assert second["summary"] == f"**{STOP_SIGNAL}**"
    assert second["output"] == first["output"]  # the last round's answer stands
    assert result["final_answer"] == first["output"]


async def test_a_layer_whose_every_answer_is_the_signal_fails_clearly():
    def signal(messages):
        return STOP_SIGNAL

    graph = create_attention_moa(
        [Proposer(n, ScriptedChatModel(reply=signal)) for n in ("a", "b")],
        aggregator=ScriptedChatModel(reply=signal),
        max_layers=1,
    )
    with pytest.raises(MoAError, match="every agent's answer were the stop signal"):
        await graph.ainvoke({"messages": [("user", "hi")]})


async def test_a_streamed_answer_never_shows_a_copied_signal():
    from attention_moa_graph import astream_answer

    def reply(messages):
        return '{"better": true}' if is_verdict_prompt(messages) else STOP_SIGNAL

    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=ScriptedChatModel(model_name="agg", reply=reply, chunk_size=1),
        max_layers=2,
    )
    events = [e async for e in astream_answer(graph, {"messages": [("user", "hi")]})]
    streamed = "".join(e.data for e in events if e.kind == "token")
    assert streamed == events[-1].data["final_answer"]
    assert STOP_SIGNAL not in streamed and streamed
