"""The critique stage is one parallel stage: all N² calls are in flight at once.

Measured by counting calls in flight inside one shared fake model with latency,
never by timing.
"""

from __future__ import annotations

import pytest

from attention_moa_graph import Proposer, create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel

pytestmark = pytest.mark.anyio


def shared(n: int, latency: float = 0.05) -> tuple[ScriptedChatModel, list[Proposer]]:
    model = ScriptedChatModel(model_name="shared", latency=latency)
    return model, [Proposer(f"agent_{i}", model) for i in range(n)]


@pytest.mark.parametrize("n", [2, 3, 5])
async def test_all_critiques_of_a_layer_run_at_once(n):
    model, agents = shared(n)
    graph = create_attention_moa(
        agents, aggregator=ScriptedChatModel(model_name="agg"), max_layers=1
    )
    await graph.ainvoke({"messages": [("user", "hi")]})
    # N(N-1) cross-attention plus N self-attention calls overlap; no stage
    # (draft N, refine N) has more, so the peak is exactly N².
    assert model.peak_in_flight == n * n


async def test_drafts_and_refinements_run_in_parallel_per_stage():
    model, agents = shared(4)
    graph = create_attention_moa(
        agents,
        aggregator=ScriptedChatModel(model_name="agg"),
        max_layers=1,
        cross_attention=False,
        self_attention=False,
    )
    await graph.ainvoke({"messages": [("user", "hi")]})
    assert model.peak_in_flight == 4


@pytest.mark.parametrize("n", [3, 5])
def test_the_sync_path_runs_all_critiques_at_once_too(n):
    # Sync nodes run in LangGraph's thread pool; the graph sizes it for N² calls
    # (its default of cpu_count + 4 threads would run them in waves).
    model, agents = shared(n)
    graph = create_attention_moa(
        agents, aggregator=ScriptedChatModel(model_name="agg"), max_layers=1
    )
    graph.invoke({"messages": [("user", "hi")]})
    assert model.peak_in_flight == n * n


async def test_max_concurrency_caps_calls_in_flight():
    model, agents = shared(4)
    graph = create_attention_moa(
        agents, aggregator=ScriptedChatModel(model_name="agg"), max_layers=1
    )
    await graph.ainvoke({"messages": [("user", "hi")]}, {"max_concurrency": 5})
    assert model.peak_in_flight == 5
