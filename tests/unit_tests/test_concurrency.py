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


def test_the_call_cap_holds_across_threads_with_their_own_event_loops():
    import asyncio
    import threading

    from tests.unit_tests.test_stragglers import shared_model_graph

    graph, shared = shared_model_graph(cap=2)
    question = {"messages": [("user", "hi")]}
    results = []

    def run_async() -> None:  # each thread starts an event loop of its own
        results.append(asyncio.run(graph.ainvoke(question)))

    def run_sync() -> None:
        results.append(graph.invoke(question))

    threads = [threading.Thread(target=f) for f in (run_async, run_async, run_sync)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 3
    assert all(r["usage"]["total"]["calls"] == 16 for r in results)
    # Three runs, each with a 9-wide critique stage: the cap held across
    # every thread and loop, and was reached.
    assert shared.peak_in_flight == 2


def test_sync_runs_share_the_packages_one_loop_and_call_models_synchronously():
    import asyncio
    import threading

    paths = []

    class PathSpy(ScriptedChatModel):
        def _answer_now(self, messages, run_manager, kwargs):
            paths.append("sync")
            return super()._answer_now(messages, run_manager, kwargs)

        async def _answer_later(self, messages, run_manager, kwargs):
            paths.append("async")
            return await super()._answer_later(messages, run_manager, kwargs)

    spy = PathSpy(model_name="spy")
    graph = create_attention_moa(
        [Proposer(n, spy) for n in ("a", "b")], aggregator=spy, max_layers=1
    )
    for _ in range(3):
        graph.invoke({"messages": [("user", "hi")]})
    loops = [t for t in threading.enumerate() if t.name == "attention-moa-loop"]
    assert len(loops) == 1  # one loop for every sync run, not one per request
    # Sync callers' calls use the models' sync interface (no async client is
    # bound to the package's loop); async callers' stay async on their loop.
    assert set(paths) == {"sync"} and len(paths) == 3 * 9
    paths.clear()
    asyncio.run(graph.ainvoke({"messages": [("user", "hi")]}))
    assert set(paths) == {"async"}
