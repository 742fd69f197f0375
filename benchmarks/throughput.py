"""Throughput: many queries through one connection pool, against its bound.

Queries run concurrently (up to `--cap` at a time) through one graph built
with `max_concurrent_calls=cap` from `"openai:"` strings (the package's
transport), as an application serving many users from one provider account
would: at most `cap` calls are in flight. Each call takes `--latency` seconds
at the loopback server (own process), so no client can exceed cap / latency
calls per second. The script reports the calls per second achieved against
that bound, the peak calls in flight at the server, query latency, and the
client processes' peak memory.

`--workers K` splits the queries and the cap over K client processes (each
its own graph, event loop and pool; `cap / K` calls in flight each), the way
past one event loop's CPU: one process sends every call of its queries, and
a busy loop answers replies late. `--pool-only` caps calls with one shared
httpx connection pool of `cap` connections instead (the graph does not limit
them; the SDK's default transport), for comparison: httpcore's pool scans
every connection for every waiting request, so its CPU cost grows with the
queue.

`--gc-threshold N` sets each client process's first-generation garbage
collector threshold (700 by default), as `critical_path` does.

Run: python -m benchmarks.throughput [--queries 500] [--cap 50] [--latency 0.2]
[--workers 1] [--gc-threshold N]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import httpx

from attention_moa_graph.testing.fake_server import fetch_stats, server_process
from benchmarks.common import loopback_ensemble, record, set_gc_threshold


async def _queries(
    url: str, first: int, queries: int, cap: int, start_at: float, **shape: Any
) -> dict[str, Any]:
    """Run queries `first`.. through one graph; starts at wall-clock `start_at`."""
    pool_only = shape.pop("pool_only")
    pool = None
    if pool_only:
        # One pool for every model: `cap` connections; requests beyond them
        # wait inside httpcore for a free one (the pool timeout is off).
        pool = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=cap, max_keepalive_connections=cap),
            timeout=httpx.Timeout(60.0, pool=None),
        )
    graph = loopback_ensemble(
        url,
        shape["agents"],
        shape["layers"],
        {"timeout": 60, "http_async_client": pool} if pool_only else None,
        call_timeout=60,
        max_concurrent_calls=None if pool_only else cap,
    )
    await graph.ainvoke({"messages": [("user", "warm up")]}, context={"max_layers": 1})
    gate = asyncio.Semaphore(cap)
    walls: list[float] = []

    async def one(index: int) -> int:
        async with gate:
            started = time.perf_counter()
            result = await graph.ainvoke(
                {"messages": [("user", f"Question number {index}?")]}
            )
            walls.append(time.perf_counter() - started)
            return int(result["usage"]["total"]["calls"])

    await asyncio.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    calls = sum(await asyncio.gather(*(one(first + i) for i in range(queries))))
    finished = time.time()
    if pool is not None:
        await pool.aclose()
    return {
        "calls": calls,
        "walls": walls,
        "started": started,
        "finished": finished,
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _worker(url: str, first: int, queries: int, cap: int, start_at: float, shape):
    shape = dict(shape)
    set_gc_threshold(shape.pop("gc_threshold", None))
    return asyncio.run(_queries(url, first, queries, cap, start_at, **shape))


def run(
    queries: int, cap: int, latency: float, workers: int, **shape: Any
) -> dict[str, float]:
    with server_process("--latency", str(latency)) as url:
        if workers == 1:
            parts = [_worker(url, 0, queries, cap, 0.0, shape)]
        else:
            start_at = time.time() + 10  # after every worker has warmed up
            share, caps = queries // workers, cap // workers
            with ProcessPoolExecutor(workers) as pool:
                futures = [
                    pool.submit(_worker, url, w * share, share, caps, start_at, shape)
                    for w in range(workers)
                ]
                parts = [future.result() for future in futures]
        stats = fetch_stats(url)
    calls = sum(part["calls"] for part in parts)
    elapsed = max(p["finished"] for p in parts) - min(p["started"] for p in parts)
    return {
        "calls": calls,
        "seconds": elapsed,
        "rate": calls / elapsed,
        "bound": cap / latency,
        "peak": stats["peak_in_flight"],
        "p50": statistics.median(w for part in parts for w in part["walls"]),
        "rss": max(part["rss"] for part in parts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--cap", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--pool-only", action="store_true", help="no max_concurrent_calls"
    )
    parser.add_argument(
        "--gc-threshold", type=int, help="gc.set_threshold(N, ...) in each client"
    )
    args = parser.parse_args()
    m = run(
        args.queries,
        args.cap,
        args.latency,
        args.workers,
        agents=args.agents,
        layers=args.layers,
        pool_only=args.pool_only,
        gc_threshold=args.gc_threshold,
    )
    capped = "one shared HTTP pool" if args.pool_only else "max_concurrent_calls"
    threshold = (
        f", garbage-collector threshold {args.gc_threshold}"
        if args.gc_threshold
        else ""
    )
    processes = (
        f"{args.workers} client processes" if args.workers > 1 else "one client process"
    )
    table = "\n".join(
        [
            f"{args.queries} queries, N={args.agents}, {args.layers} layers, "
            f"{args.latency * 1000:.0f} ms per call, {args.cap} calls in flight "
            f"at most (capped by {capped}), up to {args.cap} queries at once, "
            f"{processes}{threshold}.",
            "",
            "| calls | seconds | calls/s | bound (cap / latency) | achieved / bound "
            "| peak in flight | query p50 s | peak RSS MiB per process |",
            "|---|---|---|---|---|---|---|---|",
            f"| {m['calls']:.0f} | {m['seconds']:.1f} | {m['rate']:.1f} | "
            f"{m['bound']:.0f} | {m['rate'] / m['bound']:.2f} | {m['peak']:.0f} | "
            f"{m['p50']:.2f} | {m['rss']:.0f} |",
        ]
    )
    record("Throughput", "python -m benchmarks.throughput", table)


if __name__ == "__main__":
    main()
