"""Critical path: wall time of a query against the latency floor.

Every model call takes a fixed latency at a loopback OpenAI-compatible server in
its own process. The graph's models are built by the package from `"openai:"`
strings (so they use its aiohttp transport). For each number of agents N and
layers L, medians of `--repeats` queries:

- latency floor: stages x latency (4 stages in layer 1, 5 after), the
  physical limit of the schedule; wall / floor is the headline ratio;
- what any Python client can do here: the same stages sent as bare
  `asyncio.gather` batches of one-line prompts, through the openai SDK as it
  comes (httpx), the SDK with its aiohttp transport, and raw aiohttp POSTs;
- langchain-openai floor: exactly the requests the graph sent (recorded on
  an untimed run), one `gather` of `ChatOpenAI.ainvoke` per stage on the
  package's transport: the same client without the graph, so wall / this
  floor is the graph's own share;
- the same graph on the SDK's default transport (`ChatOpenAI` instances);
- published: the schedule of the authors' scripts, where each critic's
  critiques run one after another (N+3 stages in layer 1, N+4 after);
- the same graph called synchronously (`graph.invoke` from a thread), as
  a notebook or a script would;
- peak: calls in flight at the server;
- client CPU per call: this process's CPU time over the query, per call,
  for the graph, langchain-openai alone, the bare SDK with aiohttp and raw
  aiohttp. When N² calls each take more CPU than latency / N², the critique
  stage waits on the client's CPU, not on the server.

`--gc-threshold N` sets the garbage collector's first-generation threshold
(700 by default) for the whole run: each call allocates thousands of objects
(SDK, pydantic, HTTP, messages), so the collector runs often, and each full
collection walks the graph's state. It is a process-wide setting, for an
application to choose, which the package leaves alone.

Run: python -m benchmarks.critical_path [--latency 0.2] [--quick] [--repeats 3]
[--gc-threshold N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from attention_moa_graph.testing.fake_server import fetch_stats, server_process
from benchmarks.common import (
    bare_floor,
    langchain_floor,
    loopback_ensemble,
    record,
    recorded_stages,
    set_gc_threshold,
)


async def _query(graph: Any, question: str) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and calls of one query."""
    started, cpu = time.perf_counter(), time.process_time()
    result = await graph.ainvoke({"messages": [("user", question)]})
    wall = time.perf_counter() - started
    return wall, time.process_time() - cpu, int(result["usage"]["total"]["calls"])


async def _graph_runs(
    graph: Any, n: int, repeats: int
) -> tuple[list[float], list[float], int]:
    await graph.ainvoke(
        {"messages": [("user", "warm up the clients")]}, context={"max_layers": 1}
    )
    walls, cpus, calls = [], [], 0
    for run in range(repeats):
        wall, cpu, calls = await _query(graph, f"Question {run} for {n} agents")
        walls.append(wall)
        cpus.append(cpu / calls)
    return walls, cpus, calls


def _sync_runs(graph: Any, n: int, repeats: int) -> tuple[list[float], list[float]]:
    """`graph.invoke` from a plain thread: wall seconds and CPU seconds per call."""
    graph.invoke({"messages": [("user", "warm up the sync path")]})
    walls, cpus = [], []
    for run in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        result = graph.invoke({"messages": [("user", f"Sync question {run} for {n}")]})
        walls.append(time.perf_counter() - started)
        cpus.append((time.process_time() - cpu) / result["usage"]["total"]["calls"])
    return walls, cpus


async def measure(latency: float, n: int, layers: int, repeats: int) -> dict[str, Any]:
    median = statistics.median
    with server_process("--latency", str(latency)) as url:
        graph = loopback_ensemble(url, n, layers)
        walls, cpus, calls = await _graph_runs(graph, n, repeats)
        peak = fetch_stats(url)["peak_in_flight"]
        sync_walls, sync_cpus = await asyncio.to_thread(_sync_runs, graph, n, repeats)
        httpx_walls, _, _ = await _graph_runs(
            loopback_ensemble(url, n, layers, transport="httpx"), n, repeats
        )
        bare: dict[str, tuple[float, float]] = {}
        for transport in ("httpx", "aiohttp", "raw"):
            runs = [await bare_floor(url, n, layers, transport) for _ in range(repeats)]
            bare[transport] = (
                median(r[0] for r in runs),
                median(r[1] for r in runs) / calls,
            )
        requests = await recorded_stages(graph, f"Question 0 for {n} agents")
        await langchain_floor(url, requests[:3])  # open the clients' connections
        replays = [await langchain_floor(url, requests) for _ in range(repeats)]
    stages = 4 + 5 * (layers - 1)
    published = (n + 3) + (n + 4) * (layers - 1)
    return {
        "floor": stages * latency,
        "wall": median(walls),
        "httpx_graph": median(httpx_walls),
        "bare": bare,
        "langchain": median(r[0] for r in replays),
        "langchain_cpu": median(r[1] for r in replays) / calls * 1000,
        "published": published * latency,
        "peak": peak,
        "cpu": median(cpus) * 1000,
        "sync": median(sync_walls),
        "sync_cpu": median(sync_cpus) * 1000,
    }


async def main_async(latency: float, grid: list[tuple[int, int]], repeats: int) -> str:
    rows = [
        "| N | layers | latency floor s | wall s | **wall / floor** "
        "| graph.invoke (sync) / floor "
        "| bare SDK (httpx) / floor | bare SDK (aiohttp) / floor "
        "| raw aiohttp / floor | wall / langchain-openai floor "
        "| graph on SDK default / floor | speed-up vs published | peak in flight "
        "| client CPU ms per call: graph / langchain-openai / SDK aiohttp "
        "/ raw aiohttp | sync graph CPU ms per call |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, layers in grid:
        m = await measure(latency, n, layers, repeats)
        floor, bare = m["floor"], m["bare"]
        rows.append(
            f"| {n} | {layers} | {floor:.2f} | {m['wall']:.3f} | "
            f"**{m['wall'] / floor:.3f}** | {m['sync'] / floor:.3f} | "
            f"{bare['httpx'][0] / floor:.3f} | "
            f"{bare['aiohttp'][0] / floor:.3f} | {bare['raw'][0] / floor:.3f} | "
            f"{m['wall'] / m['langchain']:.3f} | {m['httpx_graph'] / floor:.3f} | "
            f"{m['published'] / m['wall']:.2f}x | {m['peak']:.0f} | "
            f"{m['cpu']:.2f} / {m['langchain_cpu']:.2f} / "
            f"{bare['aiohttp'][1] * 1000:.2f} / "
            f"{bare['raw'][1] * 1000:.2f} | {m['sync_cpu']:.2f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--quick", action="store_true", help="only N=5/L=3, N=8/L=2")
    parser.add_argument("--repeats", type=int, default=3, help="queries per figure")
    parser.add_argument("--gc-threshold", type=int, help="gc.set_threshold(N, ...)")
    args = parser.parse_args()
    gc_note = set_gc_threshold(args.gc_threshold)
    grid = (
        [(5, 3), (8, 2)]
        if args.quick
        else [(n, layers) for n in (3, 5, 8) for layers in (1, 2, 3)]
    )
    table = asyncio.run(main_async(args.latency, grid, args.repeats))
    table += f"\n\nMedians of {args.repeats} queries per figure. {gc_note}".rstrip()
    command = "python -m benchmarks.critical_path"
    record(f"Critical path, {args.latency * 1000:.0f} ms per call", command, table)


if __name__ == "__main__":
    main()
