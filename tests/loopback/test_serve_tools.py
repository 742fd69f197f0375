"""`serve` with tools and response formats, through the openai SDK.

The ensemble's models are `ChatOpenAI` talking to the loopback fake server,
whose tool calls and JSON replies follow from the request (see
`attention_moa_graph.testing.fake_server.tools`).
"""

from __future__ import annotations

import json

import openai
import pytest

from attention_moa_graph import Proposer, create_attention_moa
from attention_moa_graph.adapters.server import ChatCompletionsServer
from tests.helpers import openai_model

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
QUESTION = {"role": "user", "content": "What is the weather in 'Paris'?"}


@pytest.fixture
def client(fake_server):
    graph = create_attention_moa(
        [Proposer(n, openai_model(fake_server.base_url, n)) for n in ("a", "b")],
        aggregator=Proposer("chair", openai_model(fake_server.base_url, "chair")),
        max_layers=1,
    )
    server = ChatCompletionsServer(graph, port=0).start()
    try:
        yield openai.OpenAI(base_url=server.base_url, api_key="unused")
    finally:
        server.stop()


def _streamed(stream) -> tuple[str, list[dict], str]:
    text, calls, finish = "", {}, ""
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        text += choice.delta.content or ""
        for call in choice.delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"name": "", "arguments": ""})
            entry["id"] = call.id or entry.get("id")
            entry["name"] += call.function.name or ""
            entry["arguments"] += call.function.arguments or ""
        finish = choice.finish_reason or finish
    return text, [calls[i] for i in sorted(calls)], finish


def test_the_answer_is_a_tool_call_then_an_answer_from_its_result(client, fake_server):
    reply = client.chat.completions.create(
        model="attention-moa", messages=[QUESTION], tools=[WEATHER]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    # Only the summary agent was bound to the tools; the drafts were not.
    bound = [r.model for r in fake_server.log if r.params.get("tools")]
    assert bound == ["chair"]

    followed = client.chat.completions.create(
        model="attention-moa",
        tools=[WEATHER],
        messages=[
            QUESTION,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18 C and dry"},
        ],
    )
    answer = followed.choices[0]
    assert answer.finish_reason == "stop" and not answer.message.tool_calls
    assert answer.message.content == "The tool answered: 18 C and dry"


def test_a_streamed_answer_carries_its_tool_calls(client):
    stream = client.chat.completions.create(
        model="attention-moa", messages=[QUESTION], tools=[WEATHER], stream=True
    )
    text, calls, finish = _streamed(stream)
    assert finish == "tool_calls" and text == ""
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert calls[0]["id"].startswith("call_")


def test_tool_choice_none_and_a_response_format(client, fake_server):
    plain = client.chat.completions.create(
        model="attention-moa", messages=[QUESTION], tools=[WEATHER], tool_choice="none"
    )
    assert plain.choices[0].finish_reason == "stop"
    assert not [r for r in fake_server.log if r.params.get("tools")]

    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "advice": {"type": "string"}},
        "required": ["city", "advice"],
    }
    shaped = client.chat.completions.create(
        model="attention-moa",
        messages=[QUESTION],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "advice", "schema": schema},
        },
    )
    assert set(json.loads(shaped.choices[0].message.content)) == {"city", "advice"}
    formats = [r.params.get("response_format") or {} for r in fake_server.log]
    named = [f["json_schema"]["name"] for f in formats if "json_schema" in f]
    assert named == ["advice"]  # the summary agent's call only
