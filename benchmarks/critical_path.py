"""Critical path: wall time of a query against the latency floor.

Every model call takes a fixed latency at a loopback OpenAI-compatible server in
its own process, reached through the real langchain-openai client. For each
number of agents N and layers L it reports:

- wall: the graph's `ainvoke` time;
- floor: stages x latency (4 stages in layer 1, 5 after);
- measured floor: the same stages sent as bare `asyncio.gather` batches
  through the openai SDK, in the same run, with one-line prompts: what any
  Python client achieves here;
- langchain-openai floor: exactly the requests the graph sent (recorded on
  a second, untimed run of the same question), one `gather` of
  `ChatOpenAI.ainvoke` per stage: the same client without the graph, so
  wall / this floor is the graph's own share;
- published: the schedule of the authors' scripts, where each critic's
  critiques run one after another (N+3 stages in layer 1, N+4 after);
- peak: calls in flight at the server;
- client CPU per call: this process's CPU time over the query (graph) and over
  the measured floor (bare SDK), per call. When N² calls each take more CPU
  than latency / N², the critique stage is bound by the client's CPU, not by
  the server, and the graph's extra CPU per call shows in the wall time.

Run: python -m benchmarks.critical_path [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from attention_moa_graph.testing.fake_server import fetch_stats, server_process
from benchmarks.common import (
    bare_floor,
    langchain_floor,
    loopback_ensemble,
    record,
    recorded_stages,
)


async def measure(latency: float, n: int, layers: int) -> dict[str, float]:
    with server_process("--latency", str(latency)) as url:
        graph = loopback_ensemble(url, n, layers)
        await graph.ainvoke(
            {"messages": [("user", "warm up the clients")]}, context={"max_layers": 1}
        )
        question = f"Question for {n} agents"
        started, cpu = time.perf_counter(), time.process_time()
        result = await graph.ainvoke({"messages": [("user", question)]})
        wall = time.perf_counter() - started
        graph_cpu = time.process_time() - cpu
        peak = fetch_stats(url)["peak_in_flight"]
        measured, bare_cpu = await bare_floor(url, n, layers)
        requests = await recorded_stages(graph, question)
        await langchain_floor(url, requests[:1])  # open the clients' connections
        langchain = await langchain_floor(url, requests)
    calls = result["usage"]["total"]["calls"]
    stages = 4 + 5 * (layers - 1)
    published = (n + 3) + (n + 4) * (layers - 1)
    return {
        "wall": wall,
        "floor": stages * latency,
        "measured": measured,
        "langchain": langchain,
        "published": published * latency,
        "peak": peak,
        "graph_cpu": graph_cpu / calls * 1000,
        "bare_cpu": bare_cpu / calls * 1000,
    }


async def main_async(latency: float, grid: list[tuple[int, int]]) -> str:
    rows = [
        "| N | layers | wall s | floor s | measured floor s | wall / measured "
        "| langchain-openai floor s | wall / langchain-openai "
        "| published schedule s | speed-up vs published | peak in flight "
        "| client CPU ms per call: graph / bare SDK |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, layers in grid:
        m = await measure(latency, n, layers)
        rows.append(
            f"| {n} | {layers} | {m['wall']:.3f} | {m['floor']:.2f} | "
            f"{m['measured']:.3f} | {m['wall'] / m['measured']:.3f} | "
            f"{m['langchain']:.3f} | {m['wall'] / m['langchain']:.3f} | "
            f"{m['published']:.2f} | {m['published'] / m['wall']:.2f}x | "
            f"{m['peak']:.0f} | {m['graph_cpu']:.2f} / {m['bare_cpu']:.2f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--quick", action="store_true", help="only N=5/L=3, N=8/L=2")
    args = parser.parse_args()
    grid = (
        [(5, 3), (8, 2)]
        if args.quick
        else [(n, layers) for n in (3, 5, 8) for layers in (1, 2, 3)]
    )
    table = asyncio.run(main_async(args.latency, grid))
    command = "python -m benchmarks.critical_path" + (" --quick" if args.quick else "")
    record(f"Critical path, {args.latency * 1000:.0f} ms per call", command, table)


if __name__ == "__main__":
    main()
