"""Running the fake server in a process of its own, and its command line."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from attention_moa_graph.testing.fake_server.server import (
    TRANSIENT_FAULTS,
    FakeOpenAIServer,
    lognormal_latency,
)


@contextmanager
def server_process(*args: str) -> Iterator[str]:
    """Run the server in a process of its own; yields its base URL.

    Arguments are the command line's (`"--latency", "0.2"`, ...). A separate
    process keeps the server's work off the client's interpreter and core.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "attention_moa_graph.testing.fake_server", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the fake server did not start (printed {url!r})")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def fetch_stats(base_url: str) -> dict[str, Any]:
    """`GET /stats` of a server, wherever it runs."""
    with urllib.request.urlopen(f"{base_url}/stats", timeout=10) as response:
        return dict(json.loads(response.read()))


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted, printing the base URL on the first line."""
    parser = argparse.ArgumentParser(
        description="A loopback OpenAI-compatible server for tests and benchmarks."
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="median seconds")
    parser.add_argument(
        "--sigma", type=float, default=0.0, help="lognormal spread (0: fixed latency)"
    )
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument(
        "--faults",
        default=",".join(TRANSIENT_FAULTS),
        help="comma-separated fault kinds that --fault-rate draws from",
    )
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    latency: float | Callable[[str, Sequence[Mapping[str, Any]]], float] = args.latency
    if args.sigma:
        latency = lognormal_latency(args.latency, args.sigma, args.seed)
    server = FakeOpenAIServer(
        latency=latency,
        chunk_delay=args.chunk_delay,
        fault_rate=args.fault_rate,
        fault_kinds=tuple(k for k in args.faults.split(",") if k),
        hang_seconds=args.hang_seconds,
        seed=args.seed,
        port=args.port,
    ).start()
    print(server.base_url, flush=True)  # noqa: T201 - the caller reads this line
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
