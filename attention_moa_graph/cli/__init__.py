"""The `attention-moa` command line: `ask` a question, or `serve` the ensemble.

Example:
    attention-moa ask "Why is the sky blue?"            # offline demo models
    attention-moa ask "..." -p openai:gpt-4.1-mini -p anthropic:claude-sonnet-4-5 \
        -a openai:gpt-4.1
    attention-moa serve -p openai:gpt-4.1-mini -p openai:gpt-4.1-nano
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import Sequence

from attention_moa_graph.cli.ask import run_ask
from attention_moa_graph.cli.ensemble import ensemble_options
from attention_moa_graph.cli.evaluate import add_eval_parser, run_eval
from attention_moa_graph.cli.local import run_local
from attention_moa_graph.cli.serve import add_serve_arguments, run_serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attention-moa",
        description="Attention-MoA: several LLMs draft, critique each other, "
        "refine and merge their answers, layer after layer.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ensemble = ensemble_options()
    ask = commands.add_parser(
        "ask",
        parents=[ensemble],
        help="answer one question with the ensemble",
        description="Answer one question with the ensemble. With no models given, "
        "offline demo models are used.",
    )
    ask.add_argument(
        "question", nargs="?", help="the user's message (not with --resume)"
    )
    ask.add_argument(
        "--json",
        action="store_true",
        help="print the whole result (layers, usage) as JSON instead of text",
    )
    ask.add_argument(
        "--thread",
        help="conversation thread to continue or resume (default: a new one)",
    )
    ask.add_argument(
        "--resume",
        action="store_true",
        help="finish the thread's interrupted run (give the same model options)",
    )
    ask.add_argument(
        "--db",
        default=None,
        help="SQLite file of saved threads (default: $ATTENTION_MOA_DB or "
        "~/.local/state/attention-moa/checkpoints.sqlite)",
    )
    ask.add_argument(
        "--no-db", action="store_true", help="do not save the run (no resume)"
    )
    serve = commands.add_parser(
        "serve",
        parents=[ensemble],
        help="serve the ensemble as an OpenAI-compatible chat model",
        description="Serve POST /v1/chat/completions (plain and streamed, with "
        "usage) backed by the ensemble, so any OpenAI client can use it.",
    )
    add_serve_arguments(serve)
    add_eval_parser(commands)
    local = commands.add_parser(
        "local",
        help="install or check the local model runtime (llama.cpp and SmolLM2)",
        description="Install the local runtime: the SmolLM2-135M-Instruct model and a "
        "llama.cpp server that runs on this machine (the prebuilt one where the CPU "
        "allows, else built here). Then `ask` and `serve` use it when no -p is given.",
    )
    steps = local.add_subparsers(dest="step", required=True)
    install = steps.add_parser("install", help="install the model and the server")
    install.add_argument(
        "--build",
        action="store_true",
        help="build llama-server here even where the prebuilt one runs",
    )
    install.add_argument(
        "--force", action="store_true", help="replace a working installation"
    )
    steps.add_parser("status", help="say what is installed")
    return parser


GC_THRESHOLD = 10_000
"""The command line's first-generation garbage-collector threshold (Python: 700).

A model call allocates thousands of objects (SDK, HTTP, messages), so at 700
the collector runs several times a call and walks the runs in flight each
time. At 10,000 one client process went from 0.79-0.84 to 0.92 of the
throughput bound (`benchmarks/throughput.py --gc-threshold`). The setting is
process-wide, so the package makes it only in the processes it owns (the
`attention-moa` command, `python -m attention_moa_graph.cli`); an application
embedding the graph may make the same choice.
"""


def run() -> int:
    """The `attention-moa` command, in a process of its own: tune GC, then `main`."""
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    return main()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "ask":
        return run_ask(args)
    if args.command == "serve":
        return run_serve(args)
    if args.command == "eval":
        return run_eval(args)
    if args.command == "local":
        return run_local(args)
    return 2  # pragma: no cover - argparse rejects unknown commands
