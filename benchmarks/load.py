"""Many concurrent queries against a faulty loopback endpoint in its own process.

Full size (documented in the README):
    python -m benchmarks.load --queries 200 --cap 50 --fault-rate 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from dataclasses import dataclass

from langgraph.types import RetryPolicy

from attention_moa_graph._calls.errors import is_transient
from attention_moa_graph.testing.fake_server import fetch_stats, server_process
from benchmarks.common import loopback_ensemble

# Quick retries: the faults are the fake server's, not a provider's rate limits.
RETRIES = RetryPolicy(
    max_attempts=6,
    initial_interval=0.01,
    backoff_factor=1.0,
    jitter=False,
    retry_on=is_transient,
)


@dataclass
class LoadReport:
    queries: int
    completed: int
    matching: int
    faults: int
    requests: int
    seconds: float
    peak_rss_mib: float

    def line(self) -> str:
        return (
            f"{self.completed}/{self.queries} queries completed, {self.matching} "
            f"answers equal to the fault-free run; {self.faults} of {self.requests} "
            f"requests faulty; {self.seconds:.1f} s; peak RSS {self.peak_rss_mib:.0f} "
            "MiB"
        )


async def _answers(base_url: str, queries: int, cap: int) -> list[str]:
    graph = loopback_ensemble(
        base_url,
        agents=3,
        layers=2,
        model_options={"timeout": 30, "stream_usage": True},
        early_stopping=True,
        retry_policy=RETRIES,
        call_timeout=2.0,
    )
    limit = asyncio.Semaphore(cap)

    async def one(index: int) -> str:
        async with limit:
            question = {"messages": [("user", f"Question number {index}?")]}
            result = await graph.ainvoke(question)
            return str(result["final_answer"])

    return list(await asyncio.gather(*(one(i) for i in range(queries))))


async def run_load(queries: int, cap: int, fault_rate: float, seed: int) -> LoadReport:
    with server_process("--seed", str(seed)) as clean_url:
        expected = await _answers(clean_url, queries, cap)
    faulty_args = ("--fault-rate", str(fault_rate), "--seed", str(seed))
    with server_process(*faulty_args, "--hang-seconds", "3") as url:
        started = time.monotonic()
        answers = await _answers(url, queries, cap)
        seconds = time.monotonic() - started
        stats = fetch_stats(url)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return LoadReport(
        queries=queries,
        completed=len(answers),
        matching=sum(a == e for a, e in zip(answers, expected, strict=True)),
        faults=sum(stats["faults"].values()),
        requests=stats["requests"],
        seconds=seconds,
        peak_rss_mib=peak,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--cap", type=int, default=50)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = asyncio.run(run_load(args.queries, args.cap, args.fault_rate, args.seed))
    print(report.line())


if __name__ == "__main__":
    main()
