"""The aiohttp transport of the OpenAI-protocol models the package builds."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import warnings

import pytest
from langchain_core.messages import AIMessageChunk

from attention_moa_graph import AggregatorFailedError, Proposer, create_attention_moa
from attention_moa_graph._calls import transport
from attention_moa_graph._calls.models import LazyModel
from attention_moa_graph._core.options import MAX_AGENTS
from attention_moa_graph.testing.fake_server import FakeOpenAIServer
from tests.helpers import fast_retries, openai_model, run_python

QUESTION = {"messages": [("user", "What causes tides?")]}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    """A loopback server that `"openai:..."` strings reach through the environment."""
    with FakeOpenAIServer() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        yield fake


def loops_with_a_pool() -> list[asyncio.AbstractEventLoop]:
    """Loops other than the package's own (which sync runs keep) with a pool open."""
    from attention_moa_graph._calls.loop import _LOOP

    return [loop for loop in transport._pools if loop is not _LOOP.loop]


def from_strings(**options):
    return create_attention_moa(
        [Proposer(name, f"openai:{name}") for name in ("a", "b")],
        aggregator="openai:agg",
        max_layers=1,
        **options,
    )


def test_one_pool_per_event_loop_closed_when_the_loop_ends(server, caplog):
    graph = from_strings()
    seen = []

    async def ask(text: str) -> str:
        result = await graph.ainvoke({"messages": [("user", text)]})
        pool = transport._pools[asyncio.get_running_loop()]
        seen.append(pool.client)
        return result["final_answer"]

    gc.collect()  # other tests' leftovers are not this test's to count
    with (
        warnings.catch_warnings(record=True) as caught,
        caplog.at_level(logging.ERROR, logger="asyncio"),
    ):
        warnings.simplefilter("always")
        answers = [asyncio.run(ask("first")), asyncio.run(ask("second"))]
        gc.collect()

    assert all(answers)
    assert len(server.log) == 2 * 9  # both runs made every call
    # Each loop had its own aiohttp client; both were closed with their loop.
    assert seen[0] is not seen[1]
    assert all("AioHttp" in type(client).__name__ for client in seen)
    assert all(client.is_closed for client in seen)
    assert not loops_with_a_pool()
    unclosed = [str(w.message) for w in caught if "nclosed" in str(w.message)]
    assert unclosed == []
    assert "Unclosed" not in caplog.text


def test_the_connection_limit_holds_the_widest_stage_several_times():
    async def limit() -> int:
        pool = await transport._pool()
        return int(pool.client._transport.limits.max_connections)

    assert asyncio.run(limit()) >= 3 * MAX_AGENTS**2


@pytest.mark.anyio
async def test_models_from_strings_stream_through_it(server):
    graph = from_strings()
    tokens = [
        chunk.content
        async for _, (chunk, meta) in graph.astream(
            QUESTION, stream_mode="messages", subgraphs=True
        )
        if isinstance(chunk, AIMessageChunk) and meta.get("moa_role") == "summary"
    ]
    assert len(tokens) > 3  # word by word, not one block
    assert any(record.stream for record in server.log)
    assert asyncio.get_running_loop() in transport._pools


def test_the_package_builds_openai_models_on_it(server):
    from attention_moa_graph.cli.ensemble import model_from

    shared = transport.async_http_client()
    built = LazyModel("openai:a").get()
    assert built.root_async_client._client is shared
    args = argparse.Namespace(base_url=server.base_url, api_key_env="NO_SUCH_KEY")
    assert model_from("openai:b", args).http_async_client is shared


def test_a_users_own_model_keeps_its_transport(server):
    mine = openai_model(server.base_url, "a")
    built = LazyModel(mine).get()
    assert mine.http_async_client is None
    assert built.root_async_client._client is not transport.async_http_client()


def test_a_users_model_given_the_client_works_on_every_loop(server):
    from langchain_openai import ChatOpenAI

    from attention_moa_graph.transport import async_http_client

    mine = ChatOpenAI(
        model="a",
        base_url=server.base_url,
        api_key="k",
        http_async_client=async_http_client(),
    )

    async def ask() -> str:
        return str((await mine.ainvoke("hello")).content)

    # A client bound to one loop fails on the second; this one does not.
    assert asyncio.run(ask()) == asyncio.run(ask())
    assert not loops_with_a_pool()


def test_a_dropped_connection_is_reported_as_one(server):
    server.scripted_faults["agg"] = ["drop"] * 2
    graph = from_strings(retry_policy=fast_retries(2))
    with pytest.raises(AggregatorFailedError) as caught:
        asyncio.run(graph.ainvoke(QUESTION))
    message = str(caught.value)
    assert "dropped or refused the connection" in message
    assert "ServerDisconnectedError" in message
    assert "timed out" not in message
    # Retried: both drops were seen, as two requests.
    assert [r.fault for r in server.requests_for("agg")] == ["drop", "drop"]


def test_a_sync_run_calls_package_models_on_the_loop_and_others_in_threads(
    server, monkeypatch
):
    from attention_moa_graph._calls import runner

    threaded = []

    def spy(function, *args, **kwargs):
        threaded.append(function)
        return real(function, *args, **kwargs)

    real = runner.in_thread
    monkeypatch.setattr(runner, "in_thread", spy)
    result = from_strings().invoke(QUESTION)
    assert result["usage"]["total"]["calls"] == 2 + 4 + 2 + 1
    assert threaded == []  # every call went through the per-loop async pool
    assert len(server.log) == 9

    mine = create_attention_moa(
        [Proposer(n, openai_model(server.base_url, n)) for n in ("a", "b")],
        aggregator=openai_model(server.base_url, "agg"),
        max_layers=1,
    )
    mine.invoke(QUESTION)
    # A user's own client is bound to the loop that first used it: a thread each.
    assert len(threaded) == 9


def test_a_sync_run_leaves_no_connection_pool_open_at_exit(server):
    # Registered first, so it runs after the package's own exit handler.
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('pools left:', len(sys.modules["
        "'attention_moa_graph._calls.transport']._pools)))\n"
        "from attention_moa_graph import Proposer, create_attention_moa\n"
        "graph = create_attention_moa([Proposer('a', 'openai:a')],"
        " aggregator='openai:agg', max_layers=1, cross_attention=False)\n"
        "print(graph.invoke({'messages': [('user', 'Hi')]})['final_answer'])\n"
    )
    done = run_python(script, "-X", "dev")
    assert done.returncode == 0, done.stderr
    assert "agg answers" in done.stdout
    assert done.stdout.rstrip().endswith("pools left: 0"), done.stdout
    assert "Unclosed" not in done.stderr, done.stderr
