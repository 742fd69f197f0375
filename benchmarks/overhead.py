"""Graph overhead per model call, against bare asyncio.gather of the same calls.

In-process fake models with zero latency, so what remains is LangGraph, this
package's nodes, callbacks and (optionally) checkpointing. The baseline replays
exactly the calls a graph run made (same prompts, same stage batches) with
`asyncio.gather` on the same fake model.

With `AsyncSqliteSaver` a further row says how much of the cost is the saver's
own: every `aput` and `aput_writes` of one graph run is recorded, then replayed
one after another on a fresh saver (the saver takes one lock per write, so the
graph cannot overlap them either). The saver runs under each of LangGraph's
durability modes: `async` (the default: a step's checkpoint is written while
the next step runs), `sync` (written before the next step starts) and `exit`
(written once, when the run ends: a crash loses the run's progress).

The LangGraph floor is LangGraph alone: no-op nodes wired like the layers
(a subgraph per layer; `Send` tasks for drafts, critiques and refinements,
a gather node after each stage, then the summary and residual), the same
number of tasks per query; what any graph of this shape costs.

`--gc-threshold N` sets the collector's first-generation threshold, as in
`critical_path`.

Run: python -m benchmarks.overhead [--agents 5 --layers 3 --runs 20]
[--gc-threshold N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from attention_moa_graph import Proposer, create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel
from benchmarks.common import STAGE_ORDER, record, set_gc_threshold


def build(model: ScriptedChatModel, n: int, layers: int, checkpointer=None):
    return create_attention_moa(
        [Proposer(f"p{i}", model) for i in range(n)],
        aggregator=model,
        max_layers=layers,
        early_stopping=False,
        checkpointer=checkpointer,
    )


async def time_graph(
    graph, runs: int, thread: bool, durability: str | None = None
) -> float:
    times = []
    for index in range(runs):
        config = (
            {"configurable": {"thread_id": f"{durability}-{index}"}} if thread else None
        )
        started = time.perf_counter()
        await graph.ainvoke(
            {"messages": [("user", f"question {index}")]}, config, durability=durability
        )
        times.append(time.perf_counter() - started)
    return min(times)


def _merge(left: dict, right: dict) -> dict:
    return {**left, **right}


class Layer(TypedDict, total=False):
    layer: int
    drafts: Annotated[dict, _merge]
    critiques: Annotated[dict, _merge]
    refined: Annotated[dict, _merge]
    output: str


class Outer(TypedDict, total=False):
    done: int


def langgraph_floor(n: int, layers: int):
    """No-op nodes in the layers' shape; returns (graph, tasks per query)."""

    async def draft(task: dict) -> dict:
        return {"drafts": {task["agent"]: "draft"}}

    async def critique(task: dict) -> dict:
        return {"critiques": {(task["agent"], task["target"]): "critique"}}

    async def refine(task: dict) -> dict:
        return {"refined": {task["agent"]: "refined"}}

    async def summary(state: Layer) -> dict:
        return {"output": "summary"}

    async def residual(state: Layer) -> dict:
        return {"output": "residual"}

    def gather(state: Layer) -> dict:
        return {}

    agents = range(n)
    builder = StateGraph(Layer)
    for name, node in [
        ("draft", draft),
        ("gather_drafts", gather),
        ("critique", critique),
        ("gather_critiques", gather),
        ("refine", refine),
        ("gather_refined", gather),
        ("summary", summary),
        ("residual", residual),
    ]:
        builder.add_node(name, node)
    builder.add_conditional_edges(
        START, lambda s: [Send("draft", {"agent": a}) for a in agents], ["draft"]
    )
    builder.add_edge("draft", "gather_drafts")
    builder.add_conditional_edges(
        "gather_drafts",
        lambda s: [
            Send("critique", {"agent": a, "target": t}) for a in agents for t in agents
        ],
        ["critique"],
    )
    builder.add_edge("critique", "gather_critiques")
    builder.add_conditional_edges(
        "gather_critiques",
        lambda s: [Send("refine", {"agent": a}) for a in agents],
        ["refine"],
    )
    builder.add_edge("refine", "gather_refined")
    builder.add_edge("gather_refined", "summary")
    builder.add_conditional_edges(
        "summary", lambda s: "residual" if s["layer"] > 1 else END, ["residual", END]
    )
    builder.add_edge("residual", END)
    layer_graph = builder.compile()

    async def run_layer(state: Outer) -> dict:
        done = state.get("done", 0) + 1
        await layer_graph.ainvoke({"layer": done})
        return {"done": done}

    outer = StateGraph(Outer)
    outer.add_node("layer", RunnableLambda(lambda s: None, afunc=run_layer))
    outer.add_edge(START, "layer")
    outer.add_conditional_edges(
        "layer", lambda s: "layer" if s["done"] < layers else END, ["layer", END]
    )
    tasks = layers * (n + n * n + n + 1) + (layers - 1)
    return outer.compile(), tasks


async def time_bare(model: ScriptedChatModel, batches, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for batch in batches:
            await asyncio.gather(*(model.ainvoke(list(messages)) for messages in batch))
        times.append(time.perf_counter() - started)
    return min(times)


def recording_saver(path: str):
    """An AsyncSqliteSaver that also keeps every write it is asked to make."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    class Recording(AsyncSqliteSaver):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            # Off while the graph is timed: keeping every checkpoint alive
            # would slow the timed runs through the garbage collector.
            self.recording = False
            self.log: list[tuple[str, tuple[Any, ...]]] = []

        async def aput(self, config, checkpoint, metadata, new_versions):
            if self.recording:
                entry = (config, checkpoint, metadata, new_versions)
                self.log.append(("aput", entry))
            return await super().aput(config, checkpoint, metadata, new_versions)

        async def aput_writes(self, config, writes, task_id, task_path=""):
            if self.recording:
                entry = (config, writes, task_id, task_path)
                self.log.append(("aput_writes", entry))
            return await super().aput_writes(config, writes, task_id, task_path)

    return Recording.from_conn_string(path)


async def time_saver_alone(log, folder: str, runs: int) -> float:
    """Best time to make one run's recorded saver writes, one after another."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    times = []
    for index in range(runs):
        path = str(Path(folder) / f"replay{index}.sqlite")
        async with AsyncSqliteSaver.from_conn_string(path) as saver:
            await saver.setup()
            started = time.perf_counter()
            for method, args in log:
                await getattr(saver, method)(*args)
            times.append(time.perf_counter() - started)
    return min(times)


async def main_async(n: int, layers: int, runs: int) -> str:
    model = ScriptedChatModel(model_name="fake")
    graph = build(model, n, layers)
    await graph.ainvoke({"messages": [("user", "warm up")]})
    model.reset()
    await graph.ainvoke({"messages": [("user", "the recorded run")]})
    stages: dict[tuple[int, int], list] = defaultdict(list)
    for call in model.calls:
        key = (call.metadata["moa_layer"], STAGE_ORDER[call.metadata["moa_role"]])
        stages[key].append(call.messages)
    batches = [stages[key] for key in sorted(stages)]
    calls = sum(len(batch) for batch in batches)

    bare = await time_bare(model, batches, runs)
    plain = await time_graph(graph, runs, thread=False)
    floor_graph, tasks = langgraph_floor(n, layers)
    await time_graph(floor_graph, 1, thread=False)
    floor = await time_graph(floor_graph, runs, thread=False)
    durable: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "bench.sqlite")
        async with recording_saver(path) as saver:
            saved_graph = build(model, n, layers, checkpointer=saver)
            await saved_graph.ainvoke(
                {"messages": [("user", "warm up")]},
                {"configurable": {"thread_id": "w"}},
            )
            for mode in ("async", "sync", "exit"):
                durable[mode] = await time_graph(saved_graph, runs, True, mode)
            saved = durable["async"]
            saver.recording = True
            await saved_graph.ainvoke(
                {"messages": [("user", "the recorded run")]},
                {"configurable": {"thread_id": "recorded"}},
            )
            log = saver.log
        saver_alone = await time_saver_alone(log, folder, runs)
    writes = sum(1 for method, _ in log if method == "aput_writes")
    checkpoints = len(log) - writes

    def per_call(total: float) -> float:
        return (total - bare) / calls * 1000

    return "\n".join(
        [
            f"{n} agents, {layers} layers: {calls} calls per query; "
            f"best of {runs} runs (the VM's noise only ever adds time).",
            "",
            "| run | ms per query | overhead ms per call | target |",
            "|---|---|---|---|",
            f"| bare asyncio.gather of the same calls | {bare * 1000:.1f} | 0 | |",
            f"| LangGraph floor: no-op nodes of the same shape ({tasks} tasks) | "
            f"{floor * 1000:.1f} | {floor / calls * 1000:.3f} (LangGraph alone) | |",
            f"| graph, no checkpointer | {plain * 1000:.1f} | {per_call(plain):.3f} "
            "| <= 0.3 |",
            f"| graph, AsyncSqliteSaver (durability async, the default) | "
            f"{saved * 1000:.1f} | {per_call(saved):.3f} | <= 1.0 |",
            f"| graph, AsyncSqliteSaver, durability sync | "
            f"{durable['sync'] * 1000:.1f} | {per_call(durable['sync']):.3f} | |",
            f"| graph, AsyncSqliteSaver, durability exit | "
            f"{durable['exit'] * 1000:.1f} | {per_call(durable['exit']):.3f} | |",
            f"| the saver alone: one run's {checkpoints} checkpoints and {writes} "
            f"task writes, replayed | {saver_alone * 1000:.1f} | "
            f"{saver_alone / calls * 1000:.3f} | |",
            f"| graph, AsyncSqliteSaver, less the saver alone | "
            f"{(saved - saver_alone) * 1000:.1f} | "
            f"{per_call(saved - saver_alone):.3f} | |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--gc-threshold", type=int, help="gc.set_threshold(N, ...)")
    args = parser.parse_args()
    gc_note = set_gc_threshold(args.gc_threshold)
    table = asyncio.run(main_async(args.agents, args.layers, args.runs))
    if gc_note:
        table += f"\n\n{gc_note}"
    record("Graph overhead per model call", "python -m benchmarks.overhead", table)


if __name__ == "__main__":
    main()
