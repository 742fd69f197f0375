"""Tail latency: heavy-tailed calls, and what the straggler policies buy.

Every call's latency at the loopback server is a lognormal draw (median
200 ms, sigma 0.5). A stage lasts as long as its slowest call, and the
critique stage has N² of them, so a query's wall time sits well above the
median-latency floor (stages x median). For each policy the script runs the
same queries and reports:

- p50 and p90 query wall time, and p50 / median-latency floor;
- the barrier floor: the same stages as bare `asyncio.gather` batches through
  the openai SDK (on its aiohttp transport, as the graph's models) against
  the same server (what any client that waits for
  each stage gets under the same tail);
- hedges: requests the server saw beyond the calls the answer used and the
  calls given up at a deadline, as a share of the calls used;
- late critiques: critiques left out by a deadline, as a share of all
  critiques (their requests were sent and cancelled);
- late drafts and late refinements (stage deadline): as a share of the drafts
  and of the refinements asked for. A late draft takes its agent out of the
  layer; a late refinement leaves the agent's draft to the summary.

Run: python -m benchmarks.tail_latency [--queries 8] [--agents 5] [--layers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from attention_moa_graph.testing.fake_server import fetch_stats, server_process
from benchmarks.common import bare_floor, loopback_ensemble, record

MEDIAN, SIGMA = 0.2, 0.5
# The 90th percentile of one call: hedging later than this adds few requests.
P90 = MEDIAN * 2.718281828 ** (SIGMA * 1.2816)

POLICIES: dict[str, dict[str, Any]] = {
    "none (paper schedule)": {},
    f"hedge after {P90 * 1000:.0f} ms (p90)": {"hedge_after": P90},
    "critique deadline 300 ms": {"critique_deadline": 0.3},
    "hedge p90 + critique deadline 300 ms": {
        "hedge_after": P90,
        "critique_deadline": 0.3,
    },
    'critique_mode="batched" (N critique calls)': {"critique_mode": "batched"},
    "stage deadline 300 ms": {"stage_deadline": 0.3},
    "stage deadline 250 ms": {"stage_deadline": 0.25},
    "batched, stage deadline 250 ms": {
        "critique_mode": "batched",
        "stage_deadline": 0.25,
    },
}


async def run_policy(
    policy: dict[str, Any], n: int, layers: int, queries: int, seed: int
) -> dict[str, float]:
    args = ("--latency", str(MEDIAN), "--sigma", str(SIGMA), "--seed", str(seed))
    with server_process(*args) as url:
        graph = loopback_ensemble(url, n, layers, **policy)
        await graph.ainvoke(
            {"messages": [("user", "warm up")]}, context={"max_layers": 1}
        )
        before = fetch_stats(url)["requests"]
        walls, used, late, critiques, cut_off = [], 0, 0, 0, 0
        drafts = late_drafts = refinements = late_refinements = 0
        for q in range(queries):
            started = time.perf_counter()
            result = await graph.ainvoke({"messages": [("user", f"question {q}")]})
            walls.append(time.perf_counter() - started)
            used += result["usage"]["total"]["calls"]
            for layer in result["layers"]:
                late += len(layer["late_critiques"])
                # Requests cut off: one per late critique, or per late batched call.
                cut_off += len(
                    {key.split("->")[0] for key in layer["late_critiques"]}
                    if policy.get("critique_mode") == "batched"
                    else layer["late_critiques"]
                )
                critiques += len(layer["late_critiques"]) + sum(
                    len(c) for c in layer["critiques"].values()
                )
                stages = list(layer["late_agents"].values())
                late_drafts += stages.count("draft")
                late_refinements += stages.count("refine")
                drafts += n
                refinements += len(layer["refined"]) + stages.count("refine")
        sent = fetch_stats(url)["requests"] - before
    walls.sort()
    return {
        "p50": statistics.median(walls),
        "p90": walls[min(len(walls) - 1, int(0.9 * len(walls)))],
        "hedges": (sent - used - cut_off - late_drafts - late_refinements) / used,
        "late": late / critiques if critiques else 0.0,
        "late drafts": late_drafts / drafts,
        "late refinements": late_refinements / refinements if refinements else 0.0,
    }


async def measured_barrier(n: int, layers: int, queries: int) -> float:
    args = ("--latency", str(MEDIAN), "--sigma", str(SIGMA), "--seed", "0")
    with server_process(*args) as url:
        return statistics.median(
            [(await bare_floor(url, n, layers, "aiohttp"))[0] for _ in range(queries)]
        )


async def main_async(n: int, layers: int, queries: int, only: str | None) -> str:
    stages = 4 + 5 * (layers - 1)
    floor = stages * MEDIAN
    barrier = await measured_barrier(n, layers, queries)
    rows = [
        f"N={n}, {layers} layers, {queries} queries per policy, lognormal latency "
        f"(median {MEDIAN * 1000:.0f} ms, sigma {SIGMA}). Median-latency floor: "
        f"{floor:.2f} s ({stages} stages x {MEDIAN * 1000:.0f} ms). Barrier floor "
        f"(bare SDK gather per stage, p50 of {queries}): {barrier:.3f} s = "
        f"{barrier / floor:.2f} x the median floor.",
        "",
        "| policy | p50 s | p90 s | p50 / median floor | p50 / barrier floor "
        "| hedges | late critiques | late drafts | late refinements |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for index, (name, policy) in enumerate(POLICIES.items()):
        if only and only not in name:
            continue
        m = await run_policy(policy, n, layers, queries, seed=index + 1)
        rows.append(
            f"| {name} | {m['p50']:.3f} | {m['p90']:.3f} | {m['p50'] / floor:.2f} | "
            f"{m['p50'] / barrier:.2f} | {100 * m['hedges']:.1f}% | "
            f"{100 * m['late']:.1f}% | {100 * m['late drafts']:.1f}% | "
            f"{100 * m['late refinements']:.1f}% |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument(
        "--only", help="run just the policies whose names contain this text"
    )
    args = parser.parse_args()
    table = asyncio.run(main_async(args.agents, args.layers, args.queries, args.only))
    record(
        "Tail latency and straggler policies",
        "python -m benchmarks.tail_latency",
        table,
    )


if __name__ == "__main__":
    main()
