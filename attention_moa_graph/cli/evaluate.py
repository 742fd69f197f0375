"""`attention-moa eval <benchmark> generate|judge|score|report|ablate`."""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from attention_moa_graph._calls.errors import MoAError, secret_from
from attention_moa_graph._calls.models import LazyModel
from attention_moa_graph._calls.transport import async_http_client
from attention_moa_graph.cli.ensemble import DEMO_PREFIX, ensemble_options, model_from
from attention_moa_graph.cli.flags import options_from
from attention_moa_graph.evaluation import depth as depth_study, harness, report
from attention_moa_graph.evaluation.datafiles import (
    BenchmarkDataError,
    dumps,
    read_json,
)
from attention_moa_graph.evaluation.generation import (
    RUN_FILE,
    ServerBackend,
    claim_directory,
    local_backend,
    protocol_of,
    read_records,
    run_items,
)
from attention_moa_graph.evaluation.judging import read_journal, run_judge
from attention_moa_graph.evaluation.length_control import GamedBaselines, load_gamed
from attention_moa_graph.evaluation.systems import SYSTEMS, SystemSpec

ABLATIONS: dict[str, dict[str, Any]] = {
    "attention-moa": {},
    "no-cross-attention": {"cross_attention": False},
    "no-self-attention": {"self_attention": False},
    "no-attention": {"cross_attention": False, "self_attention": False},
    "no-residual": {"residual": False},
    "no-early-stopping": {"early_stopping": False},
}
"""The paper's ablations: each switches one part of Attention-MoA off."""


def add_eval_parser(commands: Any) -> None:
    """Register `eval` and its sub-commands."""
    evaluate = commands.add_parser(
        "eval",
        help="evaluate ensembles on AlpacaEval 2.0, MT-Bench or FLASK",
        description="Generate answers, judge them, score and compare systems. "
        "Benchmark data is read from the path given with --data.",
    )
    benchmarks = evaluate.add_subparsers(dest="benchmark", required=True)
    for benchmark in harness.BENCHMARKS:
        actions = benchmarks.add_parser(benchmark, help=f"{benchmark} steps")
        steps = actions.add_subparsers(dest="step", required=True)
        _generate_parser(steps, benchmark, "generate")
        _generate_parser(steps, benchmark, "ablate")
        _judge_parser(steps, benchmark)
        score = steps.add_parser(
            "score",
            help="score a judged run directory (or an annotations file) as JSON",
        )
        score.add_argument(
            "path",
            type=Path,
            help="run directory, or "
            + {
                "alpaca-eval": "an annotations.json",
                "mt-bench": "a FastChat judgment file (each model scored apart)",
                "flask": "a flask_reviews.jsonl",
            }[benchmark],
        )
        if benchmark == "alpaca-eval":
            _df_gamed_option(score)
        compare = steps.add_parser(
            "report", help="compare scored runs: JSON, a markdown table and plots"
        )
        compare.add_argument("runs", nargs="+", type=Path, help="run directories")
        compare.add_argument("--out", type=Path, required=True, help="report directory")


def _data_options(parser: argparse.ArgumentParser, benchmark: str) -> None:
    parser.add_argument(
        "--data", type=Path, required=True, help="the benchmark's files (see README)"
    )
    parser.add_argument("--out", type=Path, required=True, help="the run directory")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="items in flight (default: 4)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    if benchmark == "flask":
        parser.add_argument(
            "--subset",
            choices=("full", "hard"),
            default="full",
            help="FLASK-Hard: hard",
        )
        parser.add_argument(
            "--no-verify",
            dest="verify",
            action="store_false",
            help="accept FLASK files whose digests differ from the pinned version",
        )


def _generate_parser(steps: Any, benchmark: str, step: str) -> None:
    what = (
        "answer the benchmark with one system (resumes where it stopped)"
        if step == "generate"
        else "answer it with Attention-MoA and each of the paper's ablations, "
        "one run directory per variant under --out"
    )
    generate = steps.add_parser(
        step, parents=[ensemble_options(default_lineup=False)], help=what
    )
    _data_options(generate, benchmark)
    if step == "generate":
        generate.add_argument("--system", choices=SYSTEMS, default="attention-moa")
    generate.add_argument(
        "--models", help="comma-separated proposer models (same as repeating -p)"
    )
    generate.add_argument(
        "--samples", type=int, default=4, help="self-moa samples (default: 4)"
    )
    generate.add_argument("--name", help="generator name in the output files")
    generate.add_argument("--limit", type=int, help="answer only the first N items")
    generate.add_argument(
        "--server", help="run on a LangGraph Server at this URL instead of in-process"
    )
    generate.add_argument(
        "--assistant",
        default="attention_moa",
        help="the server's graph or assistant id",
    )
    generate.add_argument(
        "--server-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="longest one run on --server may take (default: 600)",
    )


def _df_gamed_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--df-gamed",
        type=Path,
        help="AlpacaEval's df_gamed.csv (Hugging Face dataset tatsu-lab/alpaca_eval): "
        "adds the length-controlled win rate (needs scikit-learn)",
    )


def _gamed(args: argparse.Namespace) -> GamedBaselines | None:
    path = getattr(args, "df_gamed", None)
    return None if path is None else load_gamed(path)


def _judge_parser(steps: Any, benchmark: str) -> None:
    judge = steps.add_parser("judge", help="judge a generated run, then score it")
    _data_options(judge, benchmark)
    judge.add_argument(
        "--judge",
        default=harness.default_judge(benchmark),
        help=f"judge model (default: {harness.default_judge(benchmark)})",
    )
    judge.add_argument("--judge-base-url", help="an OpenAI-compatible judge endpoint")
    judge.add_argument(
        "--judge-api-key-env",
        default="OPENAI_API_KEY",
        help="variable holding the key for --judge-base-url",
    )
    if benchmark == "alpaca-eval":
        _df_gamed_option(judge)
    judge.add_argument(
        "--depth",
        action="store_true",
        help="also judge each layer's output (attention-moa runs): the depth curve",
    )


class _Bar:
    """A rich progress bar that the runners advance."""

    def __init__(self, progress: Progress, total: int, done: int, what: str) -> None:
        self.progress = progress
        self.task = progress.add_task(what, total=total, completed=done)

    def advance(self, record: Any) -> None:
        self.progress.advance(self.task)


@contextmanager
def _bar(quiet: bool, total: int, done: int, what: str) -> Iterator[_Bar | None]:
    if quiet or total == done:
        yield None
        return
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as progress:
        yield _Bar(progress, total, done, what)


def _system_from(
    args: argparse.Namespace, variant: str | None = None, **switches: Any
) -> SystemSpec:
    """The system the options describe; an ablation `variant` switches parts off."""
    specs = list(args.proposer)
    if args.models:
        specs += [s.strip() for s in args.models.split(",") if s.strip()]
    return SystemSpec(
        kind="attention-moa" if variant else getattr(args, "system", "attention-moa"),
        proposers=tuple(specs),
        aggregator=args.aggregator,
        residual_model=args.residual_model,
        samples=args.samples,
        name=variant or args.name or "",
        options=options_from(args).replace(**switches),
    )


def _instances(
    system: SystemSpec, args: argparse.Namespace
) -> dict[str, BaseChatModel]:
    specs = {*system.proposers, system.aggregator_spec}
    if system.residual_model:
        specs.add(system.residual_model)
    built = {spec: model_from(spec, args) for spec in specs}
    return {s: m for s, m in built.items() if isinstance(m, BaseChatModel)}


async def _generate(args: argparse.Namespace, system: SystemSpec, out: Path) -> Path:
    subset, verify = getattr(args, "subset", "full"), getattr(args, "verify", True)
    items = harness.work_items(
        args.benchmark,
        args.data,
        limit=args.limit,
        temperature=getattr(args, "temperature", None),
        max_tokens=getattr(args, "max_tokens", None),
        subset=subset,
        verify=verify,
    )
    claim_directory(out, args.benchmark, system, protocol_of(items))
    finished = read_records(out)
    done = sum(1 for item in items if item.id in finished)
    with _bar(args.quiet, len(items), done, f"{system.name} {args.benchmark}") as bar:
        if args.server:
            backend: Any = ServerBackend(
                args.server, args.assistant, timeout=args.server_timeout
            )
            records = await run_items(
                backend, system, items, out, concurrency=args.concurrency, progress=bar
            )
        else:
            async with local_backend(out, system, _instances(system, args)) as local:
                records = await run_items(
                    local,
                    system,
                    items,
                    out,
                    concurrency=args.concurrency,
                    progress=bar,
                )
    return harness.write_outputs(
        args.benchmark,
        args.data,
        out,
        system.name,
        records,
        subset=subset,
        verify=verify,
    )


def _judge_model(args: argparse.Namespace) -> BaseChatModel:
    if args.judge_base_url:
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=args.judge.split(":", 1)[-1],
            base_url=args.judge_base_url,
            api_key=SecretStr(secret_from(args.judge_api_key_env) or "not-needed"),
            max_retries=0,
            http_async_client=async_http_client(),
        )
    if args.judge.startswith(DEMO_PREFIX):
        raise SystemExit("a demo model cannot judge; give a real judge model.")
    return LazyModel(args.judge).get()


async def _judged(
    args: argparse.Namespace, judging: harness.Judging, model: BaseChatModel, what: str
) -> dict[str, Any]:
    """Make a judging's missing calls (with a progress bar); return its scores."""
    done = len(set(read_journal(judging.journal)) & {job.key for job in judging.jobs})
    with _bar(args.quiet, len(judging.jobs), done, what) as bar:
        rows = await run_judge(
            model,
            judging.jobs,
            judging.journal,
            concurrency=args.concurrency,
            progress=bar,
        )
    return judging.finish(rows)


async def _judge(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    if not (out / RUN_FILE).is_file():
        raise BenchmarkDataError(
            f"{out} holds no generated run ({RUN_FILE} is missing): run `attention-moa "
            f"eval {args.benchmark} generate --out {out}` first."
        )
    run = read_json(out / RUN_FILE, "run description")
    name = run["system"]["name"]
    options: dict[str, Any] = {
        "subset": getattr(args, "subset", "full"),
        "verify": getattr(args, "verify", True),
    }
    gamed = _gamed(args)
    model = _judge_model(args)
    # With --depth, refuse a run without layer outputs before any judge call.
    records = read_records(out) if args.depth else {}
    layers = depth_study.layer_count(records) if args.depth else 0
    judging = harness.judging(
        args.benchmark, args.data, out, args.judge, name, gamed=gamed, **options
    )
    scores = await _judged(args, judging, model, f"judging {name}")
    depth: dict[str, float] = {}
    # Layers whose answers match ones already judged reuse that score.
    judged = [(records, report.headline(args.benchmark, scores))]
    for layer in range(1, layers + 1):
        layered = depth_study.at_layer(records, layer)
        known = [s for r, s in judged if depth_study.same_answers(r, layered)]
        if not known:
            directory = depth_study.layer_directory(out, layer, run)
            harness.write_outputs(
                args.benchmark, args.data, directory, name, layered, **options
            )
            layer_judging = harness.judging(
                args.benchmark, args.data, directory, args.judge, name, **options
            )
            layer_scores = await _judged(
                args, layer_judging, model, f"judging {name} layer {layer}"
            )
            known = [report.headline(args.benchmark, layer_scores)]
            judged.append((layered, known[0]))
        depth[str(layer)] = known[0]
    return report.save_scores(out, args.benchmark, args.judge, scores, depth=depth)


def run_eval(args: argparse.Namespace) -> int:
    """Run one `eval` step; returns the exit status."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        out = getattr(args, "out", None)
        if out is not None and out.exists() and not out.is_dir():
            raise BenchmarkDataError(
                f"--out {out} is a file; give a directory (it is created if missing)."
            )
        if args.step == "generate":
            path = asyncio.run(_generate(args, _system_from(args), args.out))
            console.print(f"answers written to {escape(str(path))}")
        elif args.step == "ablate":
            for variant, switches in ABLATIONS.items():
                system = _system_from(args, variant, **switches)
                path = asyncio.run(_generate(args, system, args.out / variant))
                console.print(
                    f"{escape(str(variant))}: answers written to {escape(str(path))}"
                )
        elif args.step == "judge":
            saved = asyncio.run(_judge(args, args.out))
            shown = saved["scores"]
            if "depth" in saved:
                shown = {**shown, "depth": saved["depth"]}
            print(dumps(shown, indent=2))
            if math.isnan(report.headline(args.benchmark, saved["scores"])):
                console.print(
                    "[red]error:[/red] no judgment could be scored: every reply of "
                    f"the judge {escape(args.judge)} was unreadable or off the "
                    "scale. Check the judge model (a chat model that follows the "
                    "judge prompt); the replies are in the judge journal under "
                    f"{escape(str(args.out))}.",
                    soft_wrap=True,
                )
                return 1
        elif args.step == "score":
            scores = report.score_path(args.benchmark, args.path, _gamed(args))
            print(dumps(scores, indent=2))
        elif args.step == "report":
            written = report.write_report(args.benchmark, args.runs, args.out)
            for path in written:
                console.print(f"wrote {escape(str(path))}")
    except (MoAError, ValueError, FileNotFoundError) as exc:
        console.print("[red]error:[/red]", escape(str(exc)), soft_wrap=True)
        return 2
    return 0
