"""Time to first token of the final answer when streaming.

The loopback server (own process) waits `--latency` before the first chunk of
each reply and `--chunk-delay` after each word. The run streams through
`astream_answer` (what `attention-moa ask` and the OpenAI-compatible server
use); the final answer's first token can only come once the last call has
started, so the floor is every earlier stage in full plus the last call's
first chunk. The measured floor sends the same stages as bare streaming SDK
calls (`asyncio.gather` per stage), in the same run, and times the last
call's first content chunk.

Run: python -m benchmarks.first_token [--agents 5] [--layers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import openai

from attention_moa_graph import astream_answer
from attention_moa_graph.testing.fake_server import server_process
from benchmarks.common import bare_stages, loopback_ensemble, record


async def graph_times(graph: Any, layers: int, question: str) -> tuple[float, float]:
    """Seconds to the answer's first token, and to the end of the run."""
    started = time.perf_counter()
    first = None
    async for event in astream_answer(
        graph,
        {"messages": [("user", question)]},
        context={"max_layers": layers},
    ):
        if event.kind == "token" and first is None:
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    assert first is not None, "the answer was not streamed"
    return first, total


async def bare_first_token(base_url: str, n: int, layers: int, question: str) -> float:
    """The same stages as bare streaming SDK calls, to the answer's first chunk.

    On the SDK's aiohttp transport, as the graph's models.
    """
    client = openai.AsyncOpenAI(
        base_url=base_url,
        api_key="bench",
        max_retries=0,
        http_client=openai.DefaultAioHttpClient(),
    )

    async def call(model: str, text: str, final: bool) -> None:
        stream = await client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": f"{question} {text}"}],
            stream=True,
        )
        async for chunk in stream:
            if final and chunk.choices and chunk.choices[0].delta.content:
                await stream.close()
                return

    elapsed = await bare_stages(call, n, layers)
    await client.close()
    return elapsed


async def main_async(
    n: int, layers: int, latency: float, chunk_delay: float, runs: int
) -> str:
    args = ("--latency", str(latency), "--chunk-delay", str(chunk_delay))
    with server_process(*args) as url:
        graph = loopback_ensemble(
            url, n, layers, {"streaming": True, "stream_usage": True}
        )
        await graph_times(graph, 1, "warm up")
        times = [await graph_times(graph, layers, f"question {i}") for i in range(runs)]
        floors = [
            await bare_first_token(url, n, layers, f"question {i}") for i in range(runs)
        ]
    first = statistics.median(t[0] for t in times)
    total = statistics.median(t[1] for t in times)
    floor = statistics.median(floors)
    return "\n".join(
        [
            f"N={n}, {layers} layers, {latency * 1000:.0f} ms to the first chunk, "
            f"{chunk_delay * 1000:.0f} ms per word, median of {runs} runs.",
            "",
            "| first token s | whole answer s | first token / whole | measured floor "
            "s | first token / measured floor |",
            "|---|---|---|---|---|",
            f"| {first:.3f} | {total:.3f} | {first / total:.2f} | {floor:.3f} | "
            f"{first / floor:.2f} |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--chunk-delay", type=float, default=0.02)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    table = asyncio.run(
        main_async(args.agents, args.layers, args.latency, args.chunk_delay, args.runs)
    )
    record("Time to first token", "python -m benchmarks.first_token", table)


if __name__ == "__main__":
    main()
