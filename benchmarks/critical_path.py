"""Critical path: wall time of a query against the latency floor.

Every model call takes a fixed latency at a loopback OpenAI-compatible server in
its own process, reached through the real langchain-openai client. For each
number of agents N and layers L it reports:

- wall: the graph's `ainvoke` time;
- floor: stages x latency (4 stages in layer 1, 5 after);
- measured floor: the same stages sent as bare `asyncio.gather` batches of
  the same requests through the openai SDK, in the same run: what any Python
  client achieves here;
- published: the schedule of the authors' scripts, where each critic's
  critiques run one after another (N+3 stages in layer 1, N+4 after);
- peak: calls in flight at the server.

Run: python -m benchmarks.critical_path [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from attention_moa_graph.fake_server import fetch_stats, server_process
from benchmarks.common import bare_floor, loopback_ensemble, record


async def measure(latency: float, n: int, layers: int) -> dict[str, float]:
    with server_process("--latency", str(latency)) as url:
        graph = loopback_ensemble(url, n, layers)
        await graph.ainvoke(
            {"messages": [("user", "warm up the clients")]}, context={"max_layers": 1}
        )
        started = time.perf_counter()
        await graph.ainvoke({"messages": [("user", f"Question for {n} agents")]})
        wall = time.perf_counter() - started
        peak = fetch_stats(url)["peak_in_flight"]
        measured = await bare_floor(url, n, layers)
    stages = 4 + 5 * (layers - 1)
    published = (n + 3) + (n + 4) * (layers - 1)
    return {
        "wall": wall,
        "floor": stages * latency,
        "measured": measured,
        "published": published * latency,
        "peak": peak,
    }


async def main_async(latency: float, grid: list[tuple[int, int]]) -> str:
    rows = [
        "| N | layers | wall s | floor s | measured floor s | wall / measured "
        "| published schedule s | speed-up vs published | peak in flight |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, layers in grid:
        m = await measure(latency, n, layers)
        rows.append(
            f"| {n} | {layers} | {m['wall']:.3f} | {m['floor']:.2f} | "
            f"{m['measured']:.3f} | {m['wall'] / m['measured']:.3f} | "
            f"{m['published']:.2f} | {m['published'] / m['wall']:.2f}x | "
            f"{m['peak']:.0f} |"
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
