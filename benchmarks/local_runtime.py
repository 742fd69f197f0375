"""The local runtime as a user meets it: `attention-moa ask` on the local model.

Each run is a real `attention-moa ask --json` process with the default local
lineup. The server's own counters (`/metrics`: prompt tokens it processed, those
it read from its cache, tokens it generated, and the seconds it spent on each)
are read before and after, so every figure is the server's, not an estimate.

- For each question: wall time, calls, prompt tokens processed and reused,
  tokens generated, and wall over the physical floor: the tokens the server
  had to process, each at the rate it measured for one stream in the same run
  (several slots run at once, so a run can beat this floor).
- Two processes at once against one alone, on one shared server: the pair's
  wall time over one run's.

    python -m benchmarks.local_runtime [--runs 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.common import record

DEMO = "Why is the sky blue?"
FRANCE = "What is the capital of France? Answer in one sentence."
COUNTERS = (
    "prompt_tokens_total",
    "prompt_tokens_cached_total",
    "prompt_seconds_total",
    "tokens_predicted_total",
    "tokens_predicted_seconds_total",
)


def _servers(home: Path) -> Path:
    return home / ".cache" / "attention-moa" / "servers"


def _metrics(home: Path) -> dict[str, float]:
    states = list(_servers(home).glob("*.json"))
    if not states:
        return dict.fromkeys(COUNTERS, 0.0)
    state = json.loads(states[0].read_text())
    request = urllib.request.Request(
        f"http://127.0.0.1:{state['port']}/metrics",
        headers={"Authorization": f"Bearer {state['api_key']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("llamacpp:"):
            name, value = line.split()[:2]
            found[name.removeprefix("llamacpp:")] = float(value)
    return {name: found.get(name, 0.0) for name in COUNTERS}


def _ask(home: Path, question: str) -> subprocess.Popen[str]:
    env = {**os.environ, "HOME": str(home), "ATTENTION_MOA_LOCAL_IDLE_SECONDS": "600"}
    command = [sys.executable, "-m", "attention_moa_graph.cli", "ask", "--json"]
    return subprocess.Popen(
        [*command, "--no-db", question],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=900)
    if process.returncode != 0:
        raise SystemExit(f"attention-moa ask failed:\n{err[-2000:]}")
    result: dict[str, Any] = json.loads(out)
    return result


def _ask_short(home: Path) -> subprocess.Popen[str]:
    """A one-call question that starts the shared server outside the timed runs."""
    env = {**os.environ, "HOME": str(home), "ATTENTION_MOA_LOCAL_IDLE_SECONDS": "600"}
    return subprocess.Popen(
        [sys.executable, "-m", "attention_moa_graph.cli", "ask", "--json", "--no-db"]
        + ["-l", "1", "--max-tokens", "8", "--no-cross-attention"]
        + ["--no-self-attention", "Say hello."],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def one_run(home: Path, question: str) -> dict[str, Any]:
    """One `ask` alone: its wall time, calls, answer and the server's counters."""
    before = _metrics(home)
    started = time.perf_counter()
    result = _finish(_ask(home, question))
    wall = time.perf_counter() - started
    after = _metrics(home)
    delta = {name: after[name] - before[name] for name in COUNTERS}
    prompt_rate = delta["prompt_tokens_total"] / max(
        delta["prompt_seconds_total"], 1e-9
    )
    output_rate = delta["tokens_predicted_total"] / max(
        delta["tokens_predicted_seconds_total"], 1e-9
    )
    floor = (
        delta["prompt_tokens_total"] / prompt_rate
        + delta["tokens_predicted_total"] / output_rate
    )
    return {
        "wall": wall,
        "calls": result["usage"]["total"]["calls"],
        "processed": delta["prompt_tokens_total"],
        "reused": delta["prompt_tokens_cached_total"],
        "generated": delta["tokens_predicted_total"],
        "floor": floor,
        "answer": " ".join(result["final_answer"].split()),
    }


def pair(home: Path, question: str) -> float:
    """Seconds for two `ask` processes started together to both finish."""
    started = time.perf_counter()
    first, second = _ask(home, question), _ask(home, question)
    _finish(first)
    _finish(second)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="one run, no pair")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="attention-moa-bench-") as scratch:
        home = Path(scratch)
        _finish(_ask_short(home))
        rows = [
            "| question | wall s | calls | prompt tokens processed | reused | "
            "generated | wall / floor | answer |",
            "|---|---|---|---|---|---|---|---|",
        ]
        alone: list[float] = []
        for question in (DEMO, FRANCE):
            for _ in range(runs):
                run = one_run(home, question)
                if question == DEMO:
                    alone.append(run["wall"])
                answer = run["answer"][:90] + ("..." if len(run["answer"]) > 90 else "")
                rows.append(
                    f"| {question} | {run['wall']:.1f} | {run['calls']} | "
                    f"{run['processed']:.0f} | {run['reused']:.0f} | "
                    f"{run['generated']:.0f} | {run['wall'] / run['floor']:.2f} | "
                    f"{answer} |"
                )
        lines = ["\n".join(rows)]
        if not args.quick:
            together = [pair(home, DEMO) for _ in range(runs)]
            one = statistics.median(alone)
            both = statistics.median(together)
            lines.append(
                f"Two processes at once on one server, {DEMO!r}: "
                f"{', '.join(f'{t:.1f}' for t in together)} s for the pair against "
                f"{one:.1f} s for one alone (median): {both / one:.2f} times "
                "(target <= 2.3)."
            )
        states = list(_servers(home).glob("*.json"))
        if states:
            os.kill(json.loads(states[0].read_text())["keeper_pid"], 15)
    record(
        "Local runtime: the default local lineup through attention-moa ask",
        "python -m benchmarks.local_runtime",
        "\n\n".join(lines),
    )


if __name__ == "__main__":
    main()
