"""`attention-moa serve` under load: many requests at once and many idle sockets.

Starts `attention-moa serve --demo -l 1` in its own process, reads its RSS,
then at the same time holds `--idle` sockets open (half of them having sent
half a request head, half nothing) and sends `--requests` chat requests at
once; requests turned away with 503 try again after the Retry-After the
server sends. While that goes on, a probe asks `GET /v1/models` and times
the reply. Then it waits out the head timeout, counts the sockets the server
has closed, and reads the RSS again. Run:
`python -m benchmarks.serve_load [--requests 200] [--idle 1000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks.common import record

HEAD_TIMEOUT = 5.0
ASK = {"model": "attention-moa", "messages": [{"role": "user", "content": "hi"}]}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start_server(max_running: int) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "attention_moa_graph.cli", "serve", "--demo",
            "-l", "1", "--port", "0", "--max-running", str(max_running),
            "--head-timeout", str(HEAD_TIMEOUT),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**env, "COLUMNS": "400"},
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if " at http://" in line:
            return process, line.split(" at ", 1)[1].split(" ", 1)[0]
    process.kill()
    raise RuntimeError("the server did not start")


def open_idle(url: str, count: int) -> list[socket.socket]:
    host, port = url.removeprefix("http://").removesuffix("/v1").split(":")
    sockets = []
    for index in range(count):
        conn = socket.create_connection((host, int(port)))
        if index % 2:
            conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: ")
        sockets.append(conn)
    return sockets


def closed_by_server(sockets: list[socket.socket]) -> int:
    closed = 0
    for conn in sockets:
        conn.setblocking(False)
        try:
            closed += conn.recv(1) == b""
        except BlockingIOError:
            pass
        except ConnectionResetError:
            closed += 1
    return closed


async def ask(client: httpx.AsyncClient, url: str) -> tuple[int, float]:
    """(answers turned away with 503 first, seconds to the answer)."""
    started = time.perf_counter()
    refused = 0
    while True:
        reply = await client.post(f"{url}/chat/completions", json=ASK)
        if reply.status_code != 503:
            reply.raise_for_status()
            assert reply.json()["choices"][0]["message"]["content"]
            return refused, time.perf_counter() - started
        refused += 1
        await asyncio.sleep(float(reply.headers["retry-after"]))


async def probe(url: str, until: asyncio.Event) -> list[float]:
    times = []
    async with httpx.AsyncClient(timeout=30) as client:
        while not until.is_set():
            started = time.perf_counter()
            (await client.get(f"{url}/models")).raise_for_status()
            times.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
    return times


async def load(url: str, requests: int) -> tuple[list[tuple[int, float]], list[float]]:
    done = asyncio.Event()
    probing = asyncio.create_task(probe(url, done))
    limits = httpx.Limits(max_connections=requests + 10)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        replies = await asyncio.gather(*(ask(client, url) for _ in range(requests)))
    done.set()
    return replies, await probing


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--max-running", type=int, default=8)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = args.idle + args.requests + 100
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    process, url = start_server(args.max_running)
    try:
        time.sleep(1)
        before = rss_mib(process.pid)
        idle = open_idle(url, args.idle)
        started = time.perf_counter()
        replies, probes = asyncio.run(load(url, args.requests))
        wall = time.perf_counter() - started
        during = rss_mib(process.pid)
        time.sleep(HEAD_TIMEOUT + 1)
        closed = closed_by_server(idle)
        for conn in idle:
            conn.close()
        # A second wave: memory must not keep growing with requests served.
        asyncio.run(load(url, args.requests))
        after = rss_mib(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)
    refused = sum(r for r, _ in replies)
    seconds = sorted(s for _, s in replies)
    rows = [
        f"{args.requests} chat requests at once (`--max-running "
        f"{args.max_running}`, demo models, 1 layer), with {args.idle} idle sockets "
        f"open (half with half a request head sent); head timeout {HEAD_TIMEOUT:g} s.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| requests answered | {len(replies)}/{args.requests} |",
        f"| 503 replies (each retried after Retry-After) | {refused} |",
        f"| seconds to answer: median, slowest | {statistics.median(seconds):.2f}, "
        f"{seconds[-1]:.2f} |",
        f"| wall time of the wave, s | {wall:.2f} |",
        f"| GET /v1/models during the wave: median, slowest ms | "
        f"{1000 * statistics.median(probes):.1f}, {1000 * max(probes):.1f} |",
        f"| idle sockets closed by the server after the head timeout | "
        f"{closed}/{args.idle} |",
        f"| server RSS MiB: started, after the wave, after a second wave | "
        f"{before:.0f}, {during:.0f}, {after:.0f} |",
    ]
    record("serve under load", "python -m benchmarks.serve_load", "\n".join(rows))
    print(json.dumps({"closed": closed, "answered": len(replies)}))


if __name__ == "__main__":
    main()
