"""The loopback server speaks OpenAI's protocol to the real client, faults included."""

from __future__ import annotations

import pytest
from langchain_core.exceptions import ModelError

from attention_moa_graph._calls.errors import is_transient
from attention_moa_graph.testing.fake_server import (
    FAULTS,
    FakeOpenAIServer,
    default_reply,
)
from tests.helpers import openai_model

pytestmark = pytest.mark.anyio


async def test_replies_are_deterministic_with_usage_plain_and_streamed(fake_server):
    model = openai_model(fake_server.base_url, "m1")
    plain = await model.ainvoke("hello there")
    chunks = [c async for c in model.astream("hello there")]
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed += chunk
    expected = default_reply("m1", [{"role": "user", "content": "hello there"}])
    assert plain.content == streamed.content == expected
    assert plain.usage_metadata["input_tokens"] == 2
    assert plain.usage_metadata["output_tokens"] == len(expected.split())
    assert streamed.usage_metadata["output_tokens"] == len(expected.split())
    assert len(chunks) > 3
    log = fake_server.requests_for("m1")
    assert [r.stream for r in log] == [False, True]
    assert log[1].include_usage
    assert log[0].authorization == "Bearer sk-test-not-a-real-key"


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "empty"])
async def test_each_fault_reaches_the_client_as_the_error_providers_cause(
    fault, fake_server
):
    fake_server.scripted_faults["m"] = [fault]
    model = openai_model(fake_server.base_url, "m", timeout=0.5)
    with pytest.raises(Exception) as raised:
        await model.ainvoke("hi")
    error = raised.value
    if fault in ("400", "401"):
        assert isinstance(error, ModelError) and not is_transient(error)
    elif fault == "garbage":
        assert "Expecting value" in str(error)  # a JSON decode error
    else:
        assert is_transient(error), type(error)
    assert (await model.ainvoke("hi")).content  # the next request is served


async def test_an_empty_reply_is_served_as_empty_text(fake_server):
    fake_server.scripted_faults["m"] = ["empty"]
    assert (await openai_model(fake_server.base_url, "m").ainvoke("hi")).content == ""


def test_a_seeded_fault_rate_is_reproducible_whatever_the_order():
    bodies = [f'{{"model": "m", "n": {i}}}'.encode() for i in range(400)]

    def faults(order):
        server = FakeOpenAIServer(fault_rate=0.1, seed=7)
        return {b: server.choose_fault("m", b) for b in order}

    forward = faults(bodies)
    backward = faults(list(reversed(bodies)))
    assert forward == backward
    hit = sum(f is not None for f in forward.values())
    assert 20 <= hit <= 60  # about 10% of 400
    # A retried request body gets a fresh draw.
    server = FakeOpenAIServer(fault_rate=0.5, seed=1)
    draws = [server.choose_fault("m", b"same") for _ in range(40)]
    assert any(d is None for d in draws) and any(d is not None for d in draws)


def test_unknown_fault_names_are_rejected():
    with pytest.raises(ValueError, match="unknown faults"):
        FakeOpenAIServer(scripted_faults={"m": ["teapot"]})


def test_a_streamed_reply_keeps_the_connection_for_the_next_request(fake_server):
    import http.client
    import json
    from urllib.parse import urlparse

    url = urlparse(fake_server.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    body = {
        "model": "m1",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    texts, sockets = [], []
    for _ in range(2):
        connection.request("POST", f"{url.path}/chat/completions", json.dumps(body))
        reply = connection.getresponse()
        assert reply.getheader("transfer-encoding") == "chunked"
        events = reply.read().decode().split("\n\n")  # http.client de-chunks
        assert events[-2] == "data: [DONE]"
        chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
        texts.append(
            "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        )
        sockets.append(connection.sock)
    connection.close()
    expected = default_reply("m1", [{"role": "user", "content": "hi"}])
    assert texts == [expected, expected]
    assert sockets[0] is not None and sockets[0] is sockets[1]  # one connection, reused
