"""`astream_answer`: the final call is tagged, so a stream needs no depth argument."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from attention_moa_graph import astream_answer, create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import aggregator_stopping_at, fake_agents

pytestmark = pytest.mark.anyio
QUESTION = {"messages": [HumanMessage("Why is the sky blue?")]}


def build(**kwargs):
    chair = ScriptedChatModel(
        model_name="chair", chunk_size=1, reply=kwargs.pop("reply", None)
    )
    return create_attention_moa(
        fake_agents(["a", "b"]), aggregator=chair, max_layers=2, **kwargs
    )


async def stream(graph, **kwargs):
    events = [e async for e in astream_answer(graph, QUESTION, **kwargs)]
    tokens = [e.data for e in events if e.kind == "token"]
    assert events[-1].kind == "result"
    return tokens, events[-1].data


@pytest.mark.parametrize(
    ("build_with", "context", "role", "layer"),
    [
        ({}, None, "residual", 2),
        ({}, {"max_layers": 1}, "summary", 1),
        ({"residual": False}, None, "summary", 2),
        ({}, {"residual": False}, "summary", 2),
    ],
)
async def test_exactly_the_call_that_writes_the_answer_is_tagged_final(
    call_log, build_with, context, role, layer
):
    graph = build(**build_with)
    result = await graph.ainvoke(QUESTION, {"callbacks": [call_log]}, context=context)
    final = [c for c in call_log.calls if c.get("moa_final")]
    assert [(c["moa_role"], c["moa_layer"]) for c in final] == [(role, layer)]
    tokens, streamed = await stream(graph, context=context)
    # Word by word as the final call writes them, whatever the run's depth.
    assert len(tokens) > 2
    assert "".join(tokens) == streamed["final_answer"] == result["final_answer"]


async def test_an_early_stop_at_the_last_layer_gives_the_summary_in_one_piece():
    graph = build(reply=aggregator_stopping_at(2))
    tokens, result = await stream(graph)
    assert result["stop_reason"] == "early_stop"
    assert tokens == [result["final_answer"]]
    assert "NO_FURTHER" not in result["final_answer"]
