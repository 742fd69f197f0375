"""Scores saved per run, and reports comparing runs: JSON, markdown, plots."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attention_moa_graph.evaluation import alpaca_eval, flask, mt_bench
from attention_moa_graph.evaluation.datafiles import (
    BenchmarkDataError,
    read_json,
    read_jsonl,
    write_json,
)
from attention_moa_graph.evaluation.generation import RUN_FILE, read_records
from attention_moa_graph.evaluation.length_control import GamedBaselines

SCORES_FILE = "scores.json"


def cost_per_item(out: Path) -> dict[str, float]:
    """Mean calls, tokens and wall seconds per answered item of a run."""
    records: list[dict[str, Any]] = [dict(r) for r in read_records(out).values()]
    count = len(records)

    def mean(key: str) -> float:
        return sum(float(r[key]) for r in records) / count if count else math.nan

    return {
        "items": count,
        "calls": mean("calls"),
        "input_tokens": mean("input_tokens"),
        "output_tokens": mean("output_tokens"),
        "wall_seconds": mean("wall_seconds"),
    }


def save_scores(
    out: Path,
    benchmark: str,
    judge: str,
    scores: dict[str, Any],
    *,
    depth: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Write `scores.json` in a run directory: scores, judge, system, cost.

    `depth` maps each layer ("1", "2", ...) to the headline score of that
    layer's outputs (`judge --depth`).
    """
    run = read_json(out / RUN_FILE, "run description")
    saved = {
        "benchmark": benchmark,
        "judge": judge,
        "system": run["system"],
        "scores": scores,
        "per_item": cost_per_item(out),
    }
    if depth:
        saved["depth"] = depth
    write_json(out / SCORES_FILE, saved)
    return saved


def score_path(
    benchmark: str, path: Path, gamed: GamedBaselines | None = None
) -> dict[str, Any]:
    """Score judged results: an AlpacaEval annotations file, or a run directory."""
    if benchmark == "alpaca-eval":
        file = path / "annotations.json" if path.is_dir() else path
        rows = alpaca_eval.load_annotations(file)
        return dict(alpaca_eval.score_annotations(rows, gamed))
    if benchmark == "mt-bench":
        file = _one_file(path, "model_judgment/*_single.jsonl")
        return mt_bench.score_judgments(read_jsonl(file, "MT-Bench judgments"), file)
    file = _one_file(path, "flask_reviews.jsonl")
    return dict(flask.aggregate(read_jsonl(file, "FLASK reviews")))


def _one_file(path: Path, pattern: str) -> Path:
    if path.is_file():
        return path
    found = sorted(path.glob(pattern))
    if not found:
        raise BenchmarkDataError(f"no {pattern} in {path}: judge the run first.")
    if len(found) > 1:
        names = ", ".join(str(f) for f in found)
        raise BenchmarkDataError(f"several judgment files ({names}); pass one of them.")
    return found[0]


def headline(benchmark: str, scores: dict[str, Any]) -> float:
    """The one number a system is ranked by (FLASK: the mean of skill means)."""
    if benchmark == "alpaca-eval":
        return float(scores["win_rate"])
    if benchmark == "mt-bench":
        return float(scores["score"])
    means = [skill["mean"] for skill in scores["by_skill"].values()]
    return sum(means) / len(means) if means else math.nan


HEADLINE_NAMES = {
    "alpaca-eval": "win rate (%)",
    "mt-bench": "MT-Bench score (1-10)",
    "flask": "mean of skill means (1-5)",
}


def load_scored(runs: Sequence[Path], benchmark: str) -> list[dict[str, Any]]:
    """Each run's `scores.json`, checked to be of this benchmark."""
    loaded = []
    for run in runs:
        path = run / SCORES_FILE
        if not path.exists():
            raise BenchmarkDataError(
                f"{path} not found: judge the run first "
                f"(`attention-moa eval {benchmark} judge --out {run} ...`)."
            )
        saved = read_json(path, "scores")
        if saved.get("benchmark") != benchmark:
            raise BenchmarkDataError(
                f"{run} is a {saved.get('benchmark')} run, not {benchmark}."
            )
        loaded.append({"run": str(run), **saved})
    return loaded


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _breakdown(
    scored: Sequence[dict[str, Any]],
    values: Sequence[dict[str, float]],
    order: Sequence[str],
) -> list[str]:
    """A second table: one row per system, one column per category or skill.

    Columns are every key any system has, in the benchmark's own order.
    """
    keys = [k for k in order if any(k in v for v in values)]
    keys += sorted({k for v in values for k in v} - set(keys))
    lines = ["", _row(["system", *keys]), "|" + "---|" * (len(keys) + 1)]
    for entry, by in zip(scored, values, strict=True):
        cells = [_fmt(by[k]) if k in by else "n/a" for k in keys]
        lines.append(_row([entry["system"]["name"], *cells]))
    return lines


def markdown_table(benchmark: str, scored: Sequence[dict[str, Any]]) -> str:
    """Systems side by side: score, calls and tokens per item, wall time."""
    extra = {
        "alpaca-eval": ["± SE", "discrete", "LC", "avg length"],
        "mt-bench": ["turn 1", "turn 2", "failed"],
        "flask": ["unparsed"],
    }[benchmark]
    head = [
        "system",
        "kind",
        HEADLINE_NAMES[benchmark],
        *extra,
        "calls/item",
        "tokens in/item",
        "tokens out/item",
        "wall s/item",
        "items",
    ]
    lines = [_row(head), "|" + "---|" * len(head)]
    for entry in scored:
        scores, cost = entry["scores"], entry["per_item"]
        if benchmark == "alpaca-eval":
            lc = scores.get("length_controlled_winrate")
            cells = [
                _fmt(scores["standard_error"]),
                _fmt(scores["discrete_win_rate"]),
                "n/a" if lc is None else _fmt(lc),
                str(scores.get("avg_length")),
            ]
        elif benchmark == "mt-bench":
            cells = [
                _fmt(scores["turn_1"]),
                _fmt(scores["turn_2"]),
                str(scores["n_failed"]),
            ]
        else:
            cells = [str(scores["n_unparsed"])]
        lines.append(
            _row(
                [
                    entry["system"]["name"],
                    entry["system"]["kind"],
                    _fmt(headline(benchmark, scores)),
                    *cells,
                    _fmt(cost["calls"], 1),
                    _fmt(cost["input_tokens"], 0),
                    _fmt(cost["output_tokens"], 0),
                    _fmt(cost["wall_seconds"]),
                    str(cost["items"]),
                ]
            )
        )
    if benchmark == "mt-bench":
        lines += _breakdown(
            scored,
            [dict(e["scores"]["by_category"]) for e in scored],
            mt_bench.CATEGORIES,
        )
    if benchmark == "flask":
        lines += _breakdown(
            scored,
            [
                {k: v["mean"] for k, v in e["scores"]["by_skill"].items()}
                for e in scored
            ],
            flask.SKILLS,
        )
    deep = [e for e in scored if e.get("depth")]
    if deep:
        lines += ["", f"Depth: {HEADLINE_NAMES[benchmark]} of each layer's output."]
        lines += _breakdown(
            deep,
            [{f"layer {k}": v for k, v in e["depth"].items()} for e in deep],
            [
                f"layer {k}"
                for k in sorted({k for e in deep for k in e["depth"]}, key=int)
            ],
        )
    return "\n".join(lines) + "\n"


def write_report(benchmark: str, runs: Sequence[Path], out: Path) -> list[Path]:
    """Write report.json, report.md and the plots; return the files written."""
    scored = load_scored(runs, benchmark)
    out.mkdir(parents=True, exist_ok=True)
    for entry in scored:
        entry["headline"] = headline(benchmark, entry["scores"])
    written = [out / "report.json", out / "report.md"]
    write_json(written[0], {"benchmark": benchmark, "runs": scored})
    table = markdown_table(benchmark, scored)
    try:
        from attention_moa_graph.evaluation.plots import draw_plots
    except ImportError:
        note = "Plots need matplotlib: pip install 'attention-moa-graph[eval]'.\n"
        plots: list[Path] = []
    else:
        plots = draw_plots(benchmark, scored, out)
        note = "".join(f"![{p.stem}]({p.name})\n\n" for p in plots)
    title = f"# {benchmark}: {len(scored)} systems\n\n"
    written[1].write_text(title + table + "\n" + note, encoding="utf-8")
    return written + plots
