"""`astream_answer`: the answer's tokens, and a clear error when misused."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from attention_moa_graph import create_attention_moa
from attention_moa_graph.adapters.streaming import astream_answer

pytestmark = pytest.mark.anyio


async def test_streaming_with_the_wrong_depth_says_so() -> None:
    graph = create_attention_moa(
        ["demo:a", "demo:b"], aggregator="demo:c", max_layers=2
    )
    question = {"messages": [HumanMessage("Why is the sky blue?")]}
    with pytest.raises(ValueError, match="went 2 layers deep"):
        async for _ in astream_answer(graph, question, max_layers=1, residual=True):
            pass


async def test_the_right_depth_streams_the_final_answer() -> None:
    graph = create_attention_moa(
        ["demo:a", "demo:b"], aggregator="demo:c", max_layers=2
    )
    question = {"messages": [HumanMessage("Why is the sky blue?")]}
    events = [
        e async for e in astream_answer(graph, question, max_layers=2, residual=True)
    ]
    tokens = "".join(e.data for e in events if e.kind == "token")
    assert tokens == events[-1].data["final_answer"]
