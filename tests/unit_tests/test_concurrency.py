"""A stage's calls run at once: all N² critiques of a layer are in flight together.

Checked with a rendezvous fake (calls wait for each other), never by timing.
"""

from __future__ import annotations

import pytest

from attention_moa_graph import Proposer, create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import Rendezvous

pytestmark = pytest.mark.anyio


def shared(n: int, role: str, expected: int) -> tuple[Rendezvous, list[Proposer]]:
    model = Rendezvous(model_name="shared", role=role, expected=expected)
    return model, [Proposer(f"agent_{i}", model) for i in range(n)]


def build(agents, **kwargs):
    return create_attention_moa(
        agents, aggregator=ScriptedChatModel(model_name="agg"), max_layers=1, **kwargs
    )


@pytest.mark.parametrize("n", [2, 3, 5])
async def test_all_critiques_of_a_layer_run_at_once(n):
    model, agents = shared(n, "cross_attention", n * n)
    await build(agents).ainvoke({"messages": [("user", "hi")]})
    # N(N-1) cross-attention plus N self-attention calls meet; nothing else is
    # in flight then, so the peak is exactly N².
    assert model.peak_in_flight == n * n


async def test_drafts_run_in_parallel():
    model, agents = shared(4, "draft", 4)
    await build(agents, cross_attention=False, self_attention=False).ainvoke(
        {"messages": [("user", "hi")]}
    )
    assert model.peak_in_flight == 4


@pytest.mark.parametrize("n", [3, 5])
def test_the_sync_path_runs_all_critiques_at_once_too(n):
    # Sync nodes run in LangGraph's thread pool; the graph sizes it for N² calls
    # (its default of cpu_count + 4 threads would run them in waves).
    model, agents = shared(n, "cross_attention", n * n)
    build(agents).invoke({"messages": [("user", "hi")]})
    assert model.peak_in_flight == n * n


async def test_max_concurrency_caps_calls_in_flight():
    model, agents = shared(4, "cross_attention", 5)
    await build(agents).ainvoke({"messages": [("user", "hi")]}, {"max_concurrency": 5})
    assert model.peak_in_flight == 5
