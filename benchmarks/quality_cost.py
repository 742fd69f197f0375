"""Quality per cost: how often each system is right, and what it spends to be.

The questions are `benchmarks.exact_questions` (210, computed or looked up:
nobody here wrote an answer), split in two with a seed: settings are tuned
on one half and reported on the other (`--split`). Every system answers
`<question> Reply with the answer only.` and is scored by `right`.

Per system: accuracy with its 95% Wilson interval, calls, prompt and
completion tokens and wall time per question, and how many answers loop (a
line or sentence of 3+ words said 3+ times). The slow systems (every
Attention-MoA variant, classic MoA and Self-MoA) run on a seeded sample of
the split (`--sample`, 60 by default; said in the table); single and
self-consistency on all of it. A Pareto plot (accuracy against tokens) goes
to `docs/quality_cost.png`.

By default every agent is the local SmolLM2 model (`attention-moa local
install`). With `--base-url URL --model NAME [--model NAME ...]
[--aggregator NAME]` the same table is made for any OpenAI-compatible
endpoint (key in `--api-key-env`, default OPENAI_API_KEY).

    python -m benchmarks.quality_cost [--split report] [--sample 60] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attention_moa_graph import create_attention_moa
from attention_moa_graph.evaluation import (
    create_moa,
    create_self_consistency,
    create_self_moa,
    create_single,
)
from benchmarks.common import record
from benchmarks.exact_questions import Question, questions, right, split

ROOT = Path(__file__).resolve().parents[1]
PLOT = ROOT / "docs" / "quality_cost.png"
SLOW = ("classic MoA", "Self-MoA", "Attention-MoA")
SAMPLING: dict[str, Any] = {"temperature": 0.2, "max_tokens": 120}
CAPS = {
    "draft": 80,
    "cross_attention": 40,
    "self_attention": 40,
    "critique": 120,
    "refine": 80,
    "summary": 160,
    "residual": 160,
}
ADAPTIVE: dict[str, Any] = {
    "agreement": 0.7,
    "critique_peers": 1,
    "token_budget": 4000,
    "temperature": 0.0,
}
"""Chosen on the tune split (docs/benchmarks.md#quality-per-cost)."""


def wilson(right_count: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion."""
    if total == 0:
        return 0.0, 0.0
    p = right_count / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    half /= 1 + z * z / total
    return max(0.0, centre - half), min(1.0, centre + half)


def loops(text: str) -> bool:
    """A line or sentence of 3+ words said 3+ times."""
    units = [u.strip().lower() for u in re.split(r"(?<=[.!?])\s+|\n+", text)]
    counts = Counter(u for u in units if len(u.split()) >= 3)
    return any(n >= 3 for n in counts.values())


def _models(args: argparse.Namespace) -> tuple[list[Any], Any, Any]:
    """(proposers, aggregator, a model to sample from) as the flags give them."""
    if not args.base_url:
        agents = [f"local:{args.local}@{i}" for i in (1, 2, 3)]
        return agents, f"local:{args.local}@0", f"local:{args.local}"
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    key = SecretStr(os.environ.get(args.api_key_env) or "not-needed")

    def model(name: str) -> Any:
        return ChatOpenAI(model=name, base_url=args.base_url, api_key=key)

    agents = [model(name) for name in args.model]
    chair = model(args.aggregator or args.model[0])
    return agents, chair, model(args.model[0])


def systems(args: argparse.Namespace) -> dict[str, Callable[[], Any]]:
    """Each system's name and how to build it (built when it runs)."""
    agents, chair, sampled = _models(args)
    paper: dict[str, Any] = {"max_layers": 2, "role_max_tokens": CAPS, **SAMPLING}
    return {
        "single": lambda: create_single(chair, **SAMPLING),
        "self-consistency (5 samples)": lambda: create_self_consistency(
            sampled, samples=5, temperature=0.7, max_tokens=SAMPLING["max_tokens"]
        ),
        "Attention-MoA, adaptive": lambda: create_attention_moa(
            agents, aggregator=chair, **{**paper, **ADAPTIVE, **args.adaptive}
        ),
        "classic MoA (3 agents, 2 layers)": lambda: create_moa(
            agents, aggregator=chair, layers=2, **SAMPLING
        ),
        "Self-MoA (3 samples)": lambda: create_self_moa(
            sampled,
            samples=3,
            aggregator=chair,
            temperature=0.7,
            max_tokens=SAMPLING["max_tokens"],
        ),
        "Attention-MoA, paper (3 agents, 2 layers)": lambda: create_attention_moa(
            agents, aggregator=chair, **paper
        ),
        "Attention-MoA, batched critiques": lambda: create_attention_moa(
            agents, aggregator=chair, critique_mode="batched", **paper
        ),
    }


def run(graph: Any, items: list[Question]) -> list[dict[str, Any]]:
    """Each question's answer, score and cost."""
    found = []
    for item in items:
        started = time.perf_counter()
        result = graph.invoke(
            {"messages": [("user", f"{item.question} Reply with the answer only.")]}
        )
        usage = result["usage"]["total"]
        answer = str(result["final_answer"])
        found.append(
            {
                "id": item.id,
                "right": right(item, answer),
                "loops": loops(answer),
                "calls": usage["calls"],
                "prompt": usage["input_tokens"],
                "completion": usage["output_tokens"],
                "seconds": time.perf_counter() - started,
                "answer": answer,
            }
        )
    return found


def _row(name: str, results: list[dict[str, Any]]) -> str:
    """One system's line of the table: accuracy with its interval, then costs."""
    n, k = len(results), sum(r["right"] for r in results)
    low, high = wilson(k, n)

    def mean(key: str) -> float:
        return sum(r[key] for r in results) / n

    return (
        f"| {name} | {n} | {k} ({100 * k / n:.0f}%) "
        f"| {100 * low:.0f}-{100 * high:.0f}% | {mean('calls'):.1f} "
        f"| {mean('prompt'):,.0f} | {mean('completion'):,.0f} "
        f"| {mean('seconds'):.1f} | {sum(r['loops'] for r in results)} |"
    )


def _point(
    name: str, results: list[dict[str, Any]]
) -> tuple[str, float, float, float, float]:
    """(name, tokens per question, accuracy, interval) for the plot."""
    n, k = len(results), sum(r["right"] for r in results)
    tokens = sum(r["prompt"] + r["completion"] for r in results) / n
    return (name, tokens, k / n, *wilson(k, n))


def _saved(path: Path | None, split_name: str) -> dict[str, list[dict[str, Any]]]:
    """The answers a previous run saved, by system, for this split."""
    found: dict[str, list[dict[str, Any]]] = {}
    if path and path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.pop("split") == split_name:
                found.setdefault(row.pop("system"), []).append(row)
    return found


def _save(
    path: Path, split_name: str, name: str, results: list[dict[str, Any]]
) -> None:
    with path.open("a", encoding="utf-8") as out:
        for result in results:
            out.write(
                json.dumps({"split": split_name, "system": name, **result}) + "\n"
            )


def _plot(points: list[tuple[str, float, float, float, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, tokens, accuracy, low, high in points:
        axes.errorbar(
            tokens, accuracy, yerr=[[accuracy - low], [high - accuracy]], fmt="o",
            capsize=3, label=name,
        )  # fmt: skip
    axes.set_xscale("log")
    axes.set_xlabel("tokens per question (prompt + completion, log scale)")
    axes.set_ylabel("right (share, 95% interval)")
    axes.set_title("Quality per cost on exact-answer questions")
    axes.legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(PLOT, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("tune", "report"), default="report")
    parser.add_argument("--sample", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="12 questions each")
    parser.add_argument("--systems", nargs="*", help="names (prefixes) to run")
    parser.add_argument(
        "--adaptive",
        type=json.loads,
        default={},
        metavar="JSON",
        help="options over the adaptive system's, e.g. '{\"token_budget\": 4000}'",
    )
    parser.add_argument("--local", default="smollm2", help="the local model name")
    parser.add_argument("--base-url")
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--aggregator")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY")
    parser.add_argument(
        "--out",
        type=Path,
        help="every answer goes here (JSONL) as each system ends; systems already "
        "in the file are read from it, not run again",
    )
    args = parser.parse_args()
    if args.base_url and not args.model:
        parser.error("--base-url needs at least one --model")
    tune, report = split(questions())
    items = tune if args.split == "tune" else report
    sample = sorted(
        random.Random(7).sample(range(len(items)), min(args.sample, len(items)))
    )
    slow_items = [items[i] for i in sample]
    if args.quick:
        items, slow_items = items[:12], items[:12]
    chosen = systems(args)
    if args.systems:
        chosen = {k: v for k, v in chosen.items() if k.startswith(tuple(args.systems))}
    rows = [
        "| system | questions | right | 95% interval | calls | prompt tokens "
        "| completion tokens | seconds | looping answers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    done = _saved(args.out, args.split)
    found: dict[str, list[dict[str, Any]]] = {}
    for name, build in chosen.items():
        subset = slow_items if name.startswith(SLOW) else items
        results = done.get(name) or run(build(), subset)
        if name not in done and args.out:
            _save(args.out, args.split, name, results)
        found[name] = results
        rows.append(_row(name, results))
        print(rows[-1], flush=True)
    # The fast systems again on the slow systems' sample: the same questions.
    sampled = {item.id for item in slow_items}
    points = []
    for name, results in found.items():
        on_sample = [r for r in results if r["id"] in sampled]
        if len(on_sample) < len(results):
            rows.append(_row(f"{name}, on the same sample", on_sample))
            print(rows[-1], flush=True)
        points.append(_point(name, on_sample))
    if not args.quick and len(points) > 1:
        _plot(points)
    where = args.base_url or f"local {args.local}"
    header = (
        f"{args.split} split ({len(items)} questions; the slow systems on a seeded "
        f"sample of {len(slow_items)}), models: {where}, "
        f"{', '.join(args.model) or 'three agents and an aggregator'}. "
        "Per question: calls, tokens, seconds."
    )
    record(
        "Quality per cost on exact-answer questions",
        "python -m benchmarks.quality_cost",
        header + "\n\n" + "\n".join(rows),
    )


if __name__ == "__main__":
    main()
