"""The ensemble served as an OpenAI-compatible model, used by the official client."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import openai
import pytest

from attention_moa_graph import create_attention_moa
from attention_moa_graph.adapters.server import ChatCompletionsServer
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import aggregator_stopping_at, fake_agents


@pytest.fixture
def served():
    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=ScriptedChatModel(model_name="agg", chunk_size=1),
        max_layers=2,
    )
    server = ChatCompletionsServer(graph, host="127.0.0.1", port=0).start()
    try:
        yield server, graph
    finally:
        server.stop()


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def test_a_plain_completion_returns_the_answer_and_the_usage(served):
    server, graph = served
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why do cats purr?"},
    ]
    reply = client(server).chat.completions.create(
        model="attention-moa", messages=messages
    )
    expected = graph.invoke(
        {"messages": [("system", "Be brief."), ("user", "Why do cats purr?")]}
    )
    assert reply.choices[0].message.content == expected["final_answer"]
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage.total_tokens == expected["usage"]["total"]["total_tokens"]
    assert reply.model == "attention-moa"
    assert client(server).models.list().data[0].id == "attention-moa"


def test_a_streamed_completion_sends_the_answer_in_pieces_then_usage(served):
    server, graph = served
    stream = client(server).chat.completions.create(
        model="attention-moa",
        messages=[{"role": "user", "content": "Why do cats purr?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expected = graph.invoke({"messages": [("user", "Why do cats purr?")]})
    assert text == expected["final_answer"]
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 2
    assert chunks[-1].usage.total_tokens == expected["usage"]["total"]["total_tokens"]


def test_bad_input_is_a_400_that_says_why(served):
    server, _ = served
    with pytest.raises(openai.BadRequestError, match="last message must be"):
        client(server).chat.completions.create(
            model="attention-moa",
            messages=[{"role": "assistant", "content": "hello"}],
        )


def test_an_early_stop_is_reported_and_answered(served):
    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=ScriptedChatModel(model_name="agg", reply=aggregator_stopping_at(2)),
        max_layers=3,
    )
    server = ChatCompletionsServer(graph, port=0).start()
    try:
        reply = client(server).chat.completions.create(
            model="attention-moa", messages=[{"role": "user", "content": "hi"}]
        )
    finally:
        server.stop()
    extra = reply.model_extra["attention_moa"]
    assert extra["stop_reason"] == "early_stop" and extra["layers"] == 2


def test_the_serve_command_serves_the_demo_ensemble():
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "attention_moa_graph.cli",
            "serve",
            "--demo",
            "--port",
            "0",
            "-l",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if " at http://" in line:
                url = line.split(" at ", 1)[1].split(" ", 1)[0]
        assert url, "the server did not announce its URL"
        reply = openai.OpenAI(base_url=url, api_key="unused").chat.completions.create(
            model="attention-moa", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content.startswith("[demo]")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_call_cap_holds_across_concurrent_requests():
    from concurrent.futures import ThreadPoolExecutor

    from attention_moa_graph import Proposer

    shared = ScriptedChatModel(model_name="shared", latency=0.02)
    graph = create_attention_moa(
        [Proposer(n, shared) for n in ("a", "b", "c")],
        aggregator=shared,
        max_layers=1,
        max_concurrent_calls=2,
    )
    server = ChatCompletionsServer(graph, port=0).start()
    try:

        def ask(index: int) -> str:
            messages = [{"role": "user", "content": f"question {index}"}]
            if index % 2:  # streamed and plain requests share the cap
                chunks = client(server).chat.completions.create(
                    model="attention-moa", messages=messages, stream=True
                )
                return "".join(c.choices[0].delta.content or "" for c in chunks)
            reply = client(server).chat.completions.create(
                model="attention-moa", messages=messages
            )
            return reply.choices[0].message.content or ""

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(ask, range(4)))
    finally:
        server.stop()
    assert len(set(answers)) == 4 and all(answers)
    # Four runs of 16 calls each, the critique stage 9 wide: without the
    # shared cap the calls in flight would reach 9 or more.
    assert len(shared.calls) == 4 * 16
    assert shared.peak_in_flight == 2
