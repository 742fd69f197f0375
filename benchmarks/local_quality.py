"""Single model, classic MoA and Attention-MoA on the local model, scored exactly.

Thirty short questions written for this repository (`data/local_quality.jsonl`:
15 factual, 15 arithmetic), each with the answers that count as right. An
answer is right when one of them appears in it as a whole word (case
ignored); it is not checked for wrong claims beside it. Every system runs on
`local:smollm2` agents with the CLI's local defaults (temperature 0.2, 120
tokens per call, 60 per critique, 2 layers). Needs `attention-moa local
install`. Run: `python -m benchmarks.local_quality [--limit N] [--model-file GGUF]`;
`--model-file` runs every system on another GGUF model instead of SmolLM2.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

from attention_moa_graph import create_attention_moa
from attention_moa_graph.evaluation import create_moa, create_single
from attention_moa_graph.local import leave_servers
from benchmarks.common import record

DATA = Path(__file__).resolve().parent / "data" / "local_quality.jsonl"
AGENTS = ["local:smollm2@1", "local:smollm2@2", "local:smollm2@3"]
CHAIR = "local:smollm2@0"
OPTIONS: dict[str, Any] = {"temperature": 0.2, "max_tokens": 120}


def right(answer: str, accepted: list[str]) -> bool:
    """Whether one accepted answer appears in `answer` as a whole word."""
    return any(
        re.search(rf"(?<![\w.]){re.escape(a)}(?![\w])", answer, re.IGNORECASE)
        for a in accepted
    )


def systems(model: str) -> dict[str, Any]:
    agents = [a.replace("smollm2", model) for a in AGENTS]
    chair = CHAIR.replace("smollm2", model)
    return {
        "single model": create_single(chair, **OPTIONS),
        "classic MoA (3 agents, 2 layers)": create_moa(
            agents, aggregator=chair, layers=2, **OPTIONS
        ),
        "Attention-MoA (3 agents, 2 layers)": create_attention_moa(
            agents,
            aggregator=chair,
            max_layers=2,
            role_max_tokens={"cross_attention": 60, "self_attention": 60},
            **OPTIONS,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, help="the first N questions only")
    parser.add_argument(
        "--model-file", type=Path, help="a GGUF model file to run instead of SmolLM2"
    )
    args = parser.parse_args()
    model, label = "smollm2", "SmolLM2-135M-Instruct"
    if args.model_file:
        if not args.model_file.is_file():
            parser.error(f"--model-file {args.model_file}: no such file")
        model, label = str(args.model_file.resolve()), args.model_file.stem
    items = [json.loads(line) for line in DATA.read_text().splitlines()]
    items = items[: args.limit] if args.limit else items
    rows = [
        "| system | right | calls per question | tokens per question "
        "| seconds per question |",
        "|---|---|---|---|---|",
    ]
    misses: dict[str, list[int]] = {}
    try:
        for name, graph in systems(model).items():
            correct, calls, tokens = 0, 0, 0
            started = time.perf_counter()
            for item in items:
                prompt = f"Answer in one short sentence: {item['question']}"
                result = graph.invoke({"messages": [("user", prompt)]})
                if right(result["final_answer"], item["answers"]):
                    correct += 1
                else:
                    misses.setdefault(name, []).append(item["id"])
                calls += result["usage"]["total"]["calls"]
                tokens += result["usage"]["total"]["total_tokens"]
            seconds = time.perf_counter() - started
            n = len(items)
            rows.append(
                f"| {name} | {correct}/{n} ({100 * correct / n:.0f}%) | "
                f"{calls / n:.1f} | {tokens / n:,.0f} | {seconds / n:.1f} |"
            )
            print(rows[-1], flush=True)
    finally:
        leave_servers()
    missed = "; ".join(
        f"{name}: {', '.join(map(str, ids))}" for name, ids in misses.items()
    )
    rows += ["", f"Questions missed, by id: {missed or 'none'}"]
    table = "\n".join(
        [
            f"{len(items)} questions (`benchmarks/data/local_quality.jsonl`), "
            f"local {label} agents.",
            "",
            *rows,
        ]
    )
    record(
        "Answer quality on the local model", "python -m benchmarks.local_quality", table
    )


if __name__ == "__main__":
    main()
