"""What the core costs an application: packages installed and time to import.

Two fresh virtual environments: one with `pip install .` (no extras), one with
langgraph, langchain-core and langchain at the very versions the first one got.
It prints the packages each holds (and any the package adds), their size, and
the CPU time to import the package's entry points against the CPU time to import
`langgraph.graph` and `langchain_core.language_models` in the same environment:
runs in a shuffled order, each in a new interpreter, with the best run (the machine's
noise only ever adds time) and the median.

    python -m benchmarks.footprint [--runs 25]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import record

ROOT = Path(__file__).resolve().parents[1]
BASE = ("langgraph", "langchain-core", "langchain")
BASELINE = "import langgraph.graph, langchain_core.language_models"
TARGETED = ("the factory", "the factory and the chat model")
STATEMENTS = {
    # What any application that holds a LangChain chat model has loaded.
    "a chat model's base": (
        "import langgraph.graph; "
        "from langchain_core.language_models import BaseChatModel"
    ),
    "import attention_moa_graph": "import attention_moa_graph",
    "the factory": "from attention_moa_graph import create_attention_moa",
    "the factory and the chat model": (
        "from attention_moa_graph import AttentionMoAChatModel, create_attention_moa"
    ),
}


def _venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    return where / "bin" / "python"


def _pip(python: Path, *words: str) -> str:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *words],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def _packages(python: Path) -> dict[str, str]:
    frozen = _pip(python, "list", "--format=freeze", "--exclude", "pip")
    return dict(line.split("==", 1) for line in frozen.split() if "==" in line)


def _site_mib(python: Path) -> float:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([str(python), "-c", code], text=True).strip())
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    return size / 2**20


def _import_seconds(python: Path, statement: str) -> float:
    """CPU seconds the statement takes in a new interpreter.

    CPU time, not wall time: importing is CPU-bound once the files are cached,
    and the other processes of a noisy machine only ever add wall time.
    """
    code = (
        "import time; t = time.process_time(); "
        f"{statement}; print(time.process_time() - t)"
    )
    return float(subprocess.check_output([str(python), "-c", code], text=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        package = _venv(Path(scratch) / "package")
        _pip(package, "install", "--quiet", str(ROOT))
        pulled = _packages(package)
        pulled.pop("attention-moa-graph", None)
        pins = Path(scratch) / "pins.txt"
        pins.write_text("".join(f"{n}=={v}\n" for n, v in pulled.items()))
        base = _venv(Path(scratch) / "base")
        _pip(base, "install", "--quiet", *BASE, "-c", str(pins))
        alone = _packages(base)
        extra = sorted(set(pulled) - set(alone))
        sizes = (_site_mib(base), _site_mib(package))
        _import_seconds(package, STATEMENTS["the factory and the chat model"])  # warm
        times: dict[str, list[float]] = {BASELINE: [], **{s: [] for s in STATEMENTS}}
        order = random.Random(0)
        for _ in range(args.runs):
            # A new order each round: no statement always runs right after another.
            labels = list(times)
            order.shuffle(labels)
            for label in labels:
                times[label].append(
                    _import_seconds(package, STATEMENTS.get(label, label))
                )
    best = min(times[BASELINE])
    floor = statistics.median(times[BASELINE])
    rows = [
        "| environment | packages | site-packages MiB |",
        "|---|---|---|",
        f"| {', '.join(BASE)} alone | {len(alone)} | {sizes[0]:.0f} |",
        f"| `pip install .` (no extras; less the package itself) | {len(pulled)} "
        f"| {sizes[1]:.0f} |",
        "",
        f"Packages beyond the three's own: {', '.join(extra) or 'none'}.",
        "",
        f"Import, {args.runs} runs each in new interpreters, in shuffled order:",
        "",
        "| import | best CPU s | best / base | median CPU s | median / base | target |",
        "|---|---|---|---|---|---|",
        f"| `{BASELINE}` (base) | {best:.3f} | 1.00 | {floor:.3f} | 1.00 | |",
    ]
    for label, statement in STATEMENTS.items():
        low, median = min(times[label]), statistics.median(times[label])
        target = "<= 1.10" if label in TARGETED else ""
        rows.append(
            f"| `{statement}` | {low:.3f} | {low / best:.2f} | {median:.3f} "
            f"| {median / floor:.2f} | {target} |"
        )
    record("Footprint of the core", "python -m benchmarks.footprint", "\n".join(rows))


if __name__ == "__main__":
    main()
