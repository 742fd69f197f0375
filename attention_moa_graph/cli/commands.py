"""The `attention-moa` parser and the dispatch to each command."""

from __future__ import annotations

import argparse
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
    install.add_argument(
        "--check",
        action="store_true",
        help="say what would be installed or built, and why, without doing it",
    )
    steps.add_parser("status", help="say what is installed")
    return parser


def dispatch(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run its command; returns the exit status."""
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
