"""Report plots (matplotlib, drawn off-screen): categories, skills, cost, depth."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, safe in servers and CI
import matplotlib.pyplot as plt

from attention_moa_graph.evaluation import flask
from attention_moa_graph.evaluation.report import HEADLINE_NAMES


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def mt_bench_categories(scored: Sequence[dict[str, Any]], path: Path) -> Path:
    """Grouped bars: each system's mean score per MT-Bench category."""
    categories = list(scored[0]["scores"]["by_category"])
    figure, axes = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(1, len(scored))
    for index, entry in enumerate(scored):
        by = entry["scores"]["by_category"]
        xs = [c + index * width for c in range(len(categories))]
        axes.bar(
            xs,
            [by.get(c, math.nan) for c in categories],
            width,
            label=entry["system"]["name"],
        )
    axes.set_xticks([c + 0.4 - width / 2 for c in range(len(categories))], categories)
    axes.set_ylim(0, 10)
    axes.set_ylabel("mean score (1-10)")
    axes.set_title("MT-Bench by category")
    axes.legend()
    return _save(figure, path)


def flask_radar(scored: Sequence[dict[str, Any]], path: Path) -> Path:
    """Radar of each system's mean score per FLASK skill."""
    skills = [
        s for s in flask.SKILLS if any(s in e["scores"]["by_skill"] for e in scored)
    ]
    angles = [2 * math.pi * i / len(skills) for i in range(len(skills))]
    figure = plt.figure(figsize=(6.5, 6.5))
    axes = figure.add_subplot(projection="polar")
    for entry in scored:
        by = entry["scores"]["by_skill"]
        values = [by[s]["mean"] if s in by else 0.0 for s in skills]
        axes.plot(
            [*angles, angles[0]], [*values, values[0]], label=entry["system"]["name"]
        )
    axes.set_xticks(angles, skills)
    axes.set_ylim(0, 5)
    axes.set_title("FLASK skills (1-5)")
    axes.legend(loc="lower right", bbox_to_anchor=(1.25, -0.1))
    return _save(figure, path)


def cost_vs_score(
    benchmark: str, scored: Sequence[dict[str, Any]], label: str, path: Path
) -> Path:
    """Each system as a point: model calls per item against its score."""
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for entry in scored:
        x, y = entry["per_item"]["calls"], entry["headline"]
        axes.scatter([x], [y])
        axes.annotate(
            entry["system"]["name"], (x, y), textcoords="offset points", xytext=(5, 5)
        )
    axes.set_xlabel("model calls per item")
    axes.set_ylabel(label)
    axes.set_title(f"{benchmark}: cost against score")
    return _save(figure, path)


def depth_curve(
    scored: Sequence[dict[str, Any]], label: str, path: Path
) -> Path | None:
    """Score of each layer's output, for runs judged with `--depth`."""
    deep = [e for e in scored if e.get("depth")]
    if not deep:
        return None
    figure, axes = plt.subplots(figsize=(6, 4.5))
    for entry in deep:
        layers = sorted(entry["depth"], key=int)
        axes.plot(
            [int(k) for k in layers],
            [entry["depth"][k] for k in layers],
            marker="o",
            label=entry["system"]["name"],
        )
    axes.set_xlabel("layer")
    axes.set_ylabel(label)
    axes.set_title("Score of each layer's output")
    axes.legend()
    return _save(figure, path)


def draw_plots(
    benchmark: str, scored: Sequence[dict[str, Any]], out: Path
) -> list[Path]:
    """Every plot that applies to the benchmark and the runs given."""
    label = HEADLINE_NAMES[benchmark]
    paths = [cost_vs_score(benchmark, scored, label, out / "cost_vs_score.png")]
    if benchmark == "mt-bench":
        paths.append(mt_bench_categories(scored, out / "mt_bench_categories.png"))
    if benchmark == "flask":
        paths.append(flask_radar(scored, out / "flask_skills.png"))
    depth = depth_curve(scored, label, out / "depth_curve.png")
    if depth is not None:
        paths.append(depth)
    return paths
