"""The public fake chat model: pure replies, usage, streaming, call records."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.messages import HumanMessage

from attention_moa_graph import create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel
from attention_moa_graph.testing.demo import demo_reply

pytestmark = pytest.mark.anyio


async def test_the_reply_depends_on_the_prompt_not_on_call_order():
    model = ScriptedChatModel(model_name="m", latency=0.5)
    prompts = [f"question {i}" for i in range(8)]
    forward = await asyncio.gather(*(model.ainvoke(p) for p in prompts))
    backward = await asyncio.gather(*(model.ainvoke(p) for p in reversed(prompts)))
    assert [m.content for m in forward] == [m.content for m in reversed(backward)]
    assert len({m.content for m in forward}) == 8
    assert model.peak_in_flight == 8


def test_usage_is_reported_and_counted_by_langchains_callback():
    model = ScriptedChatModel(model_name="m", reply=lambda m: "three word reply")
    with get_usage_metadata_callback() as cb:
        message = model.invoke("one two")
    assert message.usage_metadata == {
        "input_tokens": 2,
        "output_tokens": 3,
        "total_tokens": 5,
    }
    assert cb.usage_metadata["m"]["total_tokens"] == 5


async def test_streaming_yields_the_same_text_with_usage_on_the_last_chunk():
    model = ScriptedChatModel(reply=lambda m: "a b c d e", chunk_size=2)
    chunks = [c async for c in model.astream("x")]
    assert [c.content for c in chunks] == ["a b", " c d", " e"]
    assert chunks[-1].usage_metadata["output_tokens"] == 5
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == "a b c d e"
    assert "".join(c.content for c in model.stream("x")) == "a b c d e"


def test_calls_record_prompt_and_metadata():
    model = ScriptedChatModel(reply=lambda m: "ok")
    model.invoke([HumanMessage("hi")], {"metadata": {"moa_role": "draft"}})
    (call,) = model.calls
    assert call.prompt == "hi" and call.reply == "ok"
    assert call.metadata["moa_role"] == "draft"
    model.reset()
    assert model.calls == []


def test_demo_replies_are_deterministic_and_name_the_stage():
    messages = [HumanMessage("Why is the sky blue?")]
    assert demo_reply("alpha", messages) == demo_reply("alpha", messages)
    assert demo_reply("alpha", messages).startswith("Alpha's first draft")
    assert "Why is the sky blue?" in demo_reply("alpha", messages)


def test_demo_answers_say_they_come_from_demo_models():
    graph = create_attention_moa(
        ["demo:a", "demo:b"], aggregator="demo:c", max_layers=1
    )
    result = graph.invoke({"messages": [("user", "hi")]})
    assert result["final_answer"].startswith("[demo] ")
