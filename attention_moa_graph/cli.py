"""The `attention-moa` command line: ask the ensemble a question.

Example:
    attention-moa ask "Why is the sky blue?"            # offline demo models
    attention-moa ask "..." -p openai:gpt-4.1-mini -p anthropic:claude-sonnet-4-5 \
        -a openai:gpt-4.1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from pydantic import SecretStr
from rich.console import Console

from attention_moa_graph.demo import DEMO_NOTICE
from attention_moa_graph.errors import MoAError, MoAInputError
from attention_moa_graph.graph import DEFAULT_RETRY_POLICY, create_attention_moa
from attention_moa_graph.models import DEMO_PREFIX, ModelLike, Proposer
from attention_moa_graph.state import MoAInput
from attention_moa_graph.streaming import astream_answer

DEFAULT_DEMO_PROPOSERS = ("demo:alpha", "demo:beta", "demo:gamma")
DEFAULT_DEMO_AGGREGATOR = "demo:chair"
_STAGE_NAMES = {"draft": "drafts", "critique": "critiques", "refine": "refinements"}


def _ensemble_options() -> argparse.ArgumentParser:
    """Options that choose the models and shape the ensemble (ask and serve)."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("ensemble")
    group.add_argument(
        "-p",
        "--proposer",
        action="append",
        default=[],
        metavar="MODEL",
        help="a proposer as 'provider:model' or 'name=provider:model'; repeat for "
        "each agent (default: three demo models)",
    )
    group.add_argument(
        "-a",
        "--aggregator",
        metavar="MODEL",
        help="the summary and residual agent (default: the first proposer's model, "
        "or a demo model)",
    )
    group.add_argument(
        "--residual-model", metavar="MODEL", help="a different residual agent"
    )
    group.add_argument(
        "-l", "--layers", type=int, default=3, help="maximum layers (default: 3)"
    )
    for flag, dest, text in (
        ("--no-early-stopping", "early_stopping", "always run every layer"),
        ("--no-cross-attention", "cross_attention", "ablation: no peer critiques"),
        ("--no-self-attention", "self_attention", "ablation: no self-critiques"),
        ("--no-residual", "residual", "ablation: the answer is the last summary"),
    ):
        group.add_argument(flag, dest=dest, action="store_false", help=text)
    group.add_argument("-t", "--temperature", type=float, help="sampling temperature")
    group.add_argument(
        "--base-url",
        help="an OpenAI-compatible endpoint (vLLM, Ollama, ...); model names are "
        "then sent to it as given",
    )
    group.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the key for --base-url "
        "(default: OPENAI_API_KEY; local servers usually need none)",
    )
    group.add_argument(
        "--call-timeout",
        type=float,
        default=120.0,
        help="seconds a model call may take (default: 120)",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRY_POLICY.max_attempts,
        help="attempts per model call on transient failures (default: 3)",
    )
    group.add_argument(
        "--min-agents",
        type=int,
        default=1,
        help="fewest agents a layer may continue with after failures (default: 1)",
    )
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attention-moa",
        description="Attention-MoA: several LLMs draft, critique each other, "
        "refine and merge their answers, layer after layer.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ensemble = _ensemble_options()
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
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1; the server has no auth)",
    )
    serve.add_argument("--port", type=int, default=8000, help="default: 8000")
    serve.add_argument(
        "--model-name",
        default="attention-moa",
        help="the model id clients see (default: attention-moa)",
    )
    return parser


def _db_path(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db).expanduser()
    if os.environ.get("ATTENTION_MOA_DB"):
        return Path(os.environ["ATTENTION_MOA_DB"]).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(state).expanduser() / "attention-moa" / "checkpoints.sqlite"


@asynccontextmanager
async def _checkpointer(args: argparse.Namespace) -> AsyncIterator[Any]:
    if args.no_db:
        yield None
        return
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = _db_path(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield saver


def _split_named(value: str) -> tuple[str | None, str]:
    """`name=spec` -> (name, spec); a bare spec has no name."""
    name, sep, spec = value.partition("=")
    if sep and name and ":" not in name:
        return name, spec
    return None, value


def _openai_compatible(spec: str, base_url: str, key_env: str) -> BaseChatModel:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise SystemExit(
            "--base-url needs langchain-openai: "
            "pip install 'attention-moa-graph[openai]'"
        ) from exc
    model = spec.split(":", 1)[1] if spec.startswith("openai:") else spec
    return ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=SecretStr(os.environ.get(key_env) or "not-needed"),
        stream_usage=True,
        timeout=120,
    )


def _model(spec: str, args: argparse.Namespace) -> ModelLike:
    if args.base_url and not spec.startswith(DEMO_PREFIX):
        return _openai_compatible(spec, args.base_url, args.api_key_env)
    return spec


def _agents(args: argparse.Namespace) -> tuple[list[Proposer], ModelLike, bool]:
    """The proposers, the aggregator, and whether demo models are in use."""
    specs = list(args.proposer) or list(DEFAULT_DEMO_PROPOSERS)
    proposers: list[Proposer] = []
    for index, value in enumerate(specs):
        name, spec = _split_named(value)
        if name is None:
            name = (
                spec[len(DEMO_PREFIX) :]
                if spec.startswith(DEMO_PREFIX)
                else f"proposer_{index}"
            )
        proposers.append(Proposer(name=name, model=_model(spec, args)))
    aggregator_spec = args.aggregator or (
        _split_named(specs[0])[1] if args.proposer else DEFAULT_DEMO_AGGREGATOR
    )
    every_spec = [_split_named(s)[1] for s in specs] + [aggregator_spec]
    if args.residual_model:
        every_spec.append(args.residual_model)
    demo = any(s.startswith(DEMO_PREFIX) for s in every_spec)
    return proposers, _model(aggregator_spec, args), demo


def _describe(event: dict[str, Any]) -> str | None:
    kind = event.get("event")
    layer = event.get("layer")
    if kind == "layer_start":
        return f"[bold]layer {layer}[/bold]"
    if kind == "stage_done":
        stage = _STAGE_NAMES.get(event["stage"], event["stage"])
        return f"  {stage}: {event['results']} done ({event['calls']} calls so far)"
    if kind == "layer_end":
        stop = " [yellow]residual agent: stop[/yellow]" if event["stopped"] else ""
        return f"  layer {layer} done: {event['calls']} calls{stop}"
    return None


async def _run(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    proposers, aggregator, demo = _agents(args)
    if demo and not args.json:
        console.print(f"[cyan]{DEMO_NOTICE}[/cyan]")
    async with _checkpointer(args) as checkpointer:
        return await _stream(args, console, proposers, aggregator, checkpointer)


def _build(
    args: argparse.Namespace,
    proposers: list[Proposer],
    aggregator: ModelLike,
    checkpointer: Any = None,
    name: str = "attention_moa",
) -> CompiledStateGraph[Any, Any, Any, Any]:
    return create_attention_moa(
        proposers,
        aggregator=aggregator,
        residual_model=_model(args.residual_model, args)
        if args.residual_model
        else None,
        max_layers=args.layers,
        early_stopping=args.early_stopping,
        cross_attention=args.cross_attention,
        self_attention=args.self_attention,
        residual=args.residual,
        temperature=args.temperature,
        call_timeout=args.call_timeout,
        retry_policy=DEFAULT_RETRY_POLICY._replace(max_attempts=max(1, args.retries)),
        min_agents=args.min_agents,
        checkpointer=checkpointer,
        name=name,
    )


async def _stream(
    args: argparse.Namespace,
    console: Console,
    proposers: list[Proposer],
    aggregator: ModelLike,
    checkpointer: Any,
) -> dict[str, Any]:
    graph = _build(args, proposers, aggregator, checkpointer)
    config: RunnableConfig = {"configurable": {"thread_id": args.thread}}
    if args.resume and not (await graph.aget_state(config)).next:
        raise ValueError(
            f"thread {args.thread} has no interrupted run to resume; ask a question "
            "to continue the conversation"
        )
    payload: MoAInput | None = (
        None if args.resume else MoAInput(messages=[HumanMessage(args.question)])
    )
    result: dict[str, Any] = {}
    status = None if args.json else console.status("working...")
    if status:
        status.start()
    answering = False
    try:
        async for event in astream_answer(
            graph,
            payload,
            config,
            max_layers=args.layers,
            residual=args.residual,
        ):
            if event.kind == "result":
                result = event.data
            elif args.json:
                continue
            elif event.kind == "progress":
                line = _describe(event.data)
                if line:
                    console.print(line)
            else:
                if not answering:
                    answering = True
                    if status:
                        status.stop()
                    console.print("[bold]answer[/bold]")
                console.out(event.data, end="", highlight=False)
    finally:
        if status:
            status.stop()
    if answering:
        console.out("")
    return result


def _ask(args: argparse.Namespace) -> int:
    console = Console(stderr=False, highlight=False)
    errors = Console(stderr=True, highlight=False)
    if args.resume and (args.question or not args.thread or args.no_db):
        errors.print(
            "[red]error:[/red] --resume takes --thread ID (and a saved run), "
            "and no question"
        )
        return 2
    if not args.resume and not args.question:
        errors.print("[red]error:[/red] give a question, e.g. attention-moa ask 'Hi?'")
        return 2
    args.thread = args.thread or uuid.uuid4().hex[:12]
    try:
        result = asyncio.run(_run(args, console))
    except (MoAInputError, ValueError) as exc:
        errors.print(f"[red]error:[/red] {exc}")
        return 2
    except MoAError as exc:
        errors.print(f"[red]the run stopped:[/red] {exc}")
        if not args.no_db:
            errors.print(
                f"Resume it with: attention-moa ask --resume --thread {args.thread} "
                "(and the same model options)"
            )
        return 1
    if args.json:
        payload = {
            "thread": args.thread,
            "final_answer": result["final_answer"],
            "stop_reason": result["stop_reason"],
            "layers": result["layers"],
            "usage": result["usage"],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    total = result["usage"]["total"]
    reason = (
        "stopped early by the residual agent"
        if result["stop_reason"] == "early_stop"
        else "ran every layer"
    )
    layers = len(result["layers"])
    console.print(
        f"{layers} layer{'s' if layers != 1 else ''} ({reason}), "
        f"{total['calls']} model calls, {total['total_tokens']} tokens; "
        f"thread {args.thread}"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from attention_moa_graph.serve import ChatCompletionsServer

    console = Console(highlight=False)
    try:
        proposers, aggregator, demo = _agents(args)
        graph = _build(args, proposers, aggregator, name=args.model_name)
        server = ChatCompletionsServer(
            graph,
            model_name=args.model_name,
            max_layers=args.layers,
            residual=args.residual,
            host=args.host,
            port=args.port,
        )
    except (ValueError, OSError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        return 2
    if demo:
        console.print(f"[cyan]{DEMO_NOTICE}[/cyan]")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]Listening on {args.host}: the endpoint has no authentication."
            "[/yellow]"
        )
    console.print(
        f"Serving model {args.model_name!r} at {server.base_url} "
        "(POST /chat/completions). Ctrl-C stops."
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "ask":
        return _ask(args)
    if args.command == "serve":
        return _serve(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
