"""Shared pieces of the benchmark scripts: machine description and RESULTS.md."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import os
import platform
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    """One line describing where the figures were taken."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return (
        f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
        f"commit {commit}"
    )


def set_gc_threshold(threshold: int | None) -> str:
    """`--gc-threshold N`: the collector's first-generation threshold (Python: 700).

    Returns a sentence for the table, empty when the threshold is left alone.
    Call it in the process that runs the queries (each worker, if several).
    """
    if not threshold:
        return ""
    gc.set_threshold(threshold, *gc.get_threshold()[1:])
    return f"Garbage-collector threshold {gc.get_threshold()}."


def record(title: str, command: str, table: str) -> None:
    """Print a result table and append it, dated, to RESULTS.md.

    `command` is completed with the arguments the script was given.
    """
    import sys

    extra = " ".join(sys.argv[1:])
    if extra and extra not in command:
        command = f"{command} {extra}"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"\n## {title} ({stamp})\n\nMachine: {machine()}\n\n"
        f"Command: `{command}`\n\n{table}\n"
    )
    print(block)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nAppended by the scripts in `benchmarks/` "
            "(`make bench`); newest last.\n"
        )
    with RESULTS.open("a") as out:
        out.write(block)


def loopback_ensemble(
    base_url: str,
    agents: int,
    layers: int,
    model_options: dict[str, Any] | None = None,
    transport: str = "package",
    **graph_options: Any,
) -> Any:
    """Attention-MoA whose models are clients of a loopback server.

    Proposers `p0`, `p1`, ... and the aggregator `agg`; every layer runs
    (early stopping off) unless `graph_options` say otherwise. With no
    `model_options` and the package's transport, the models are built by the
    package from `"openai:p0"` strings, as a user's would be (the server's URL
    and a key go into the environment); otherwise they are `ChatOpenAI`
    instances with those options, on the package's transport or (`"httpx"`)
    on the SDK's default one.
    """
    from langchain_openai import ChatOpenAI

    from attention_moa_graph import Proposer, create_attention_moa
    from attention_moa_graph._calls.transport import async_http_client

    graph_options.setdefault("early_stopping", False)
    names = [f"p{i}" for i in range(agents)]
    if model_options is None and transport == "package":
        os.environ["OPENAI_BASE_URL"] = base_url
        os.environ["OPENAI_API_KEY"] = "bench"
        return create_attention_moa(
            [Proposer(name, f"openai:{name}") for name in names],
            aggregator="openai:agg",
            max_layers=layers,
            **graph_options,
        )
    settings: dict[str, Any] = {"api_key": "bench", "timeout": 30, "max_retries": 0}
    if transport == "package":
        settings["http_async_client"] = async_http_client()
    settings.update(model_options or {})

    def model(name: str) -> ChatOpenAI:
        return ChatOpenAI(model=name, base_url=base_url, **settings)

    return create_attention_moa(
        [Proposer(name, model(name)) for name in names],
        aggregator=model("agg"),
        max_layers=layers,
        **graph_options,
    )


async def bare_stages(
    call: Callable[[str, str, bool], Awaitable[Any]], agents: int, layers: int
) -> float:
    """Seconds for one query's stages as bare `asyncio.gather` batches.

    `call(model, text, final)` makes one request; `final` marks the call whose
    reply is the answer (the last residual, or the summary of a 1-layer run).
    """
    names = [f"p{i}" for i in range(agents)]
    started = time.perf_counter()
    for layer in range(1, layers + 1):
        last = layer == layers
        await asyncio.gather(*(call(a, f"draft {layer}", False) for a in names))
        await asyncio.gather(
            *(call(c, f"critique {layer} {t}", False) for c in names for t in names)
        )
        await asyncio.gather(*(call(a, f"refine {layer}", False) for a in names))
        await call("agg", f"summary {layer}", last and layer == 1)
        if layer > 1:
            await call("agg", f"residual {layer}", last)
    return time.perf_counter() - started


async def bare_floor(
    base_url: str, n: int, layers: int, transport: str = "httpx"
) -> tuple[float, float]:
    """The same stage structure as bare calls: one `gather` per stage.

    `transport`: `httpx` (the openai SDK as it comes), `aiohttp` (the SDK with
    `openai.DefaultAioHttpClient`) or `raw` (aiohttp POSTs and `json()`, no
    SDK: about the least CPU a Python client spends per call). Returns the
    wall seconds and this process's CPU seconds of the stages (building the
    client, which loads TLS certificates, left out).
    """
    import aiohttp
    import openai

    if transport == "raw":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000))
        url = base_url.rstrip("/") + "/chat/completions"

        async def call(model: str, text: str, final: bool) -> None:
            body = {"model": model, "messages": [{"role": "user", "content": text}]}
            async with session.post(url, json=body) as response:
                await response.json()

        close: Callable[[], Awaitable[Any]] = session.close
    else:
        http = openai.DefaultAioHttpClient() if transport == "aiohttp" else None
        client = openai.AsyncOpenAI(
            base_url=base_url, api_key="bench", max_retries=0, http_client=http
        )

        async def call(model: str, text: str, final: bool) -> None:
            await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": text}]
            )

        close = client.close

    await bare_stages(call, n, 1)  # open the connections, outside the timing
    cpu = time.process_time()
    elapsed = await bare_stages(call, n, layers)
    cpu = time.process_time() - cpu
    await close()
    return elapsed, cpu


# A call's stage within its layer, by `moa_role`: calls of one stage run together.
STAGE_ORDER = {
    "draft": 0,
    "cross_attention": 1,
    "self_attention": 1,
    "critique": 1,
    "refine": 2,
    "summary": 3,
    "residual": 4,
}


async def recorded_stages(graph: Any, question: str) -> list[list[Any]]:
    """Run `graph` once and return its requests, batched by (layer, stage).

    Each request is (model name, the LangChain messages of the call).
    """
    from langchain_core.callbacks import BaseCallbackHandler

    seen: dict[tuple[int, int], list[Any]] = {}

    class Recorder(BaseCallbackHandler):
        def on_chat_model_start(self, serialized, messages, *, metadata=None, **kw):
            metadata = metadata or {}
            if "moa_role" not in metadata:
                return
            key = (metadata["moa_layer"], STAGE_ORDER[metadata["moa_role"]])
            model = kw["invocation_params"]["model"]
            seen.setdefault(key, []).append((model, messages[0]))

    config = {"callbacks": [Recorder()]}
    await graph.ainvoke({"messages": [("user", question)]}, config)
    return [seen[key] for key in sorted(seen)]


async def langchain_floor(
    base_url: str, batches: list[list[Any]]
) -> tuple[float, float]:
    """Send exactly these requests through langchain-openai alone.

    One `asyncio.gather` of `ChatOpenAI.ainvoke` per stage: the same client
    and transport the graph uses, without the graph. Returns the wall seconds
    and this process's CPU seconds.
    """
    from langchain_openai import ChatOpenAI

    from attention_moa_graph._calls.transport import async_http_client

    settings: dict[str, Any] = {
        "api_key": "bench",
        "timeout": 30,
        "max_retries": 0,
        "http_async_client": async_http_client(),
    }
    models = {
        name: ChatOpenAI(model=name, base_url=base_url, **settings)
        for name in {model for batch in batches for model, _ in batch}
    }
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        await asyncio.gather(
            *(models[model].ainvoke(messages) for model, messages in batch)
        )
    return time.perf_counter() - started, time.process_time() - cpu
