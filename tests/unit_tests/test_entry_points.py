"""invoke, ainvoke, stream and astream all run the same algorithm."""

from __future__ import annotations

import pytest

from attention_moa_graph import create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import aggregator_stopping_at, fake_agents

pytestmark = pytest.mark.anyio

QUESTION = {"messages": [("user", "Explain photosynthesis briefly.")]}


def build():
    return create_attention_moa(
        fake_agents(["a", "b", "c"]),
        aggregator=ScriptedChatModel(model_name="agg", reply=aggregator_stopping_at(3)),
        max_layers=4,
    )


def comparable(result):
    return (
        result["final_answer"],
        result["stop_reason"],
        result["layers"],
        result["usage"],
    )


async def test_sync_and_async_give_the_same_result(call_log):
    sync_result = build().invoke(QUESTION, {"callbacks": [call_log]})
    sync_calls = sorted(map(sorted, (c.items() for c in call_log.calls)))
    call_log.calls.clear()
    async_result = await build().ainvoke(QUESTION, {"callbacks": [call_log]})
    async_calls = sorted(map(sorted, (c.items() for c in call_log.calls)))

    assert comparable(sync_result) == comparable(async_result)
    assert sync_result["stop_reason"] == "early_stop"
    assert len(sync_result["layers"]) == 3
    assert sync_calls == async_calls
    assert len(sync_calls) == 16 + 18 + 17  # layer 3: the verdict stops it


async def test_astream_reports_layer_progress_and_ends_with_the_answer():
    graph = build()
    events, final = [], None
    async for namespace, mode, data in graph.astream(
        QUESTION, stream_mode=["custom", "values"], subgraphs=True
    ):
        if mode == "custom":
            events.append(data)
        elif not namespace:
            final = data
    expected = await build().ainvoke(QUESTION)

    assert comparable(final) == comparable(expected)
    starts = [e["layer"] for e in events if e["event"] == "layer_start"]
    ends = [
        (e["layer"], e["stopped"], e["converged"], e["calls"])
        for e in events
        if e["event"] == "layer_end"
    ]
    assert starts == [1, 2, 3]
    assert ends == [(1, False, False, 16), (2, False, False, 18), (3, True, False, 17)]
    stages = [
        (e["layer"], e["stage"], e["results"])
        for e in events
        if e["event"] == "stage_done"
    ]
    assert stages[:3] == [(1, "draft", 3), (1, "critique", 9), (1, "refine", 3)]


def test_stream_updates_name_the_outer_nodes_in_order():
    nodes = [
        next(iter(chunk)) for chunk in build().stream(QUESTION, stream_mode="updates")
    ]
    assert nodes == ["prepare", "layer", "layer", "layer", "finish"]


async def test_the_final_answer_streams_as_a_message():
    graph = build()
    final_messages = []
    async for chunk, meta in graph.astream(QUESTION, stream_mode="messages"):
        if meta.get("langgraph_node") == "finish":
            final_messages.append(chunk)
    assert len(final_messages) == 1
    assert (
        final_messages[0].content == (await build().ainvoke(QUESTION))["final_answer"]
    )
