"""`attention-moa ask`: one question, progress per layer, the answer streamed."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from rich.console import Console
from rich.markup import escape

from attention_moa_graph._calls.errors import MoAError, MoAInputError
from attention_moa_graph._core.state import MoAInput
from attention_moa_graph.adapters.streaming import astream_answer
from attention_moa_graph.cli.ensemble import Lineup, build_graph, lineup_from
from attention_moa_graph.cli.threads import (
    LineupRecord,
    ThreadStore,
    ThreadStoreError,
    resume_command,
    store_error,
)

_STAGE_NAMES = {"draft": "drafts", "critique": "critiques", "refine": "refinements"}


def _db_path(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db).expanduser()
    if os.environ.get("ATTENTION_MOA_DB"):
        return Path(os.environ["ATTENTION_MOA_DB"]).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or "~/.local/state"
    return Path(state).expanduser() / "attention-moa" / "checkpoints.sqlite"


def _open_store(args: argparse.Namespace) -> ThreadStore:
    path = _db_path(args)
    # Saved threads hold conversations: readable by their owner only (SQLite
    # gives its journal files the database file's permissions).
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise ThreadStoreError(
            f"cannot use {path} for saved threads: {exc.strerror}. Give another "
            "file with --db, or --no-db to save nothing."
        ) from None
    return ThreadStore(path)


@asynccontextmanager
async def _checkpointer(path: Path) -> AsyncIterator[Any]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield saver


def _describe(event: dict[str, Any]) -> str | None:
    kind = event.get("event")
    layer = event.get("layer")
    if kind == "layer_start":
        return f"[bold]layer {layer}[/bold]"
    if kind == "stage_done":
        stage = _STAGE_NAMES.get(event["stage"], event["stage"])
        return f"  {stage}: {event['results']} done ({event['calls']} calls so far)"
    if kind == "layer_end":
        stop = ""
        if event["stopped"]:
            why = (
                "the drafts agreed"
                if event.get("agreed")
                else "the round repeated the last"
                if event["converged"]
                else "residual agent"
            )
            stop = f"; [yellow]stop ({why})[/yellow]"
        return f"  layer {layer} done: {event['calls']} calls{stop}"
    return None


def _record(args: argparse.Namespace, lineup: Lineup) -> LineupRecord:
    return LineupRecord(
        lineup.specs,
        lineup.aggregator_spec,
        args.residual_model,
        args.base_url,
        " ".join(shlex.quote(word) for word in lineup.options),
    )


async def _run(
    args: argparse.Namespace, out: Console, log: Console, lineup: Lineup
) -> dict[str, Any]:
    if lineup.notice and not args.json:
        log.print(f"[cyan]{escape(lineup.notice)}[/cyan]")
    if args.no_db:
        return await _stream(args, out, log, lineup, None)
    store = _open_store(args)
    try:
        with store.claim(args.thread, _record(args, lineup), resume=args.resume):
            async with _checkpointer(store.path) as checkpointer:
                return await _stream(args, out, log, lineup, checkpointer)
    except sqlite3.Error as exc:
        raise store_error(store.path, exc) from None
    finally:
        store.close()


async def _stream(
    args: argparse.Namespace,
    out: Console,
    log: Console,
    lineup: Lineup,
    checkpointer: Any,
) -> dict[str, Any]:
    graph = build_graph(args, lineup, checkpointer)
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
    status = None if args.json else log.status("working...")
    if status:
        status.start()
    # Progress goes to stderr, the answer alone to stdout; progress that comes
    # while the answer streams waits for its end, so the two never interleave.
    answering = False
    deferred: list[str] = []
    try:
        async for event in astream_answer(graph, payload, config):
            if event.kind == "result":
                result = event.data
            elif args.json:
                continue
            elif event.kind == "progress":
                line = _describe(event.data)
                if line and answering:
                    deferred.append(line)
                elif line:
                    log.print(line)
            else:
                if not answering:
                    answering = True
                    if status:
                        status.stop()
                    log.print("[bold]answer[/bold]")
                out.out(event.data, end="", highlight=False)
    finally:
        if status:
            status.stop()
    if answering:
        out.out("")
    for line in deferred:
        log.print(line)
    return result


_STOPPED = {
    "max_layers": "ran every layer",
    "early_stop": "stopped early by the residual agent",
    "agreement": "stopped early: the drafts agreed",
    "token_budget": "stopped at the token budget",
}


def _resume(args: argparse.Namespace, lineup: Lineup | None) -> str:
    return resume_command(args.thread, _record(args, lineup) if lineup else None)


def run_ask(args: argparse.Namespace) -> int:
    """Answer one question; returns the exit status."""
    out = Console(stderr=False, highlight=False)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
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
    lineup = None
    try:
        lineup = lineup_from(args)
        result = asyncio.run(_run(args, out, errors, lineup))
    except KeyboardInterrupt:
        errors.print("\n[yellow]interrupted[/yellow]")
        if not args.no_db:
            errors.print(f"Resume it with: {escape(_resume(args, lineup))}")
        return 130
    except (MoAInputError, ValueError) as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    except MoAError as exc:
        errors.print(f"[red]the run stopped:[/red] {escape(str(exc))}")
        if not args.no_db:
            errors.print(f"Resume it with: {escape(_resume(args, lineup))}")
        return 1
    if args.json:
        payload = {
            "thread": None if args.no_db else args.thread,
            "final_answer": result["final_answer"],
            "stop_reason": result["stop_reason"],
            "layers": result["layers"],
            "usage": result["usage"],
        }
        print(json.dumps(payload, indent=2, ensure_ascii=False))
        return 0
    total = result["usage"]["total"]
    reason = _STOPPED[result["stop_reason"]]
    if result["stop_reason"] == "early_stop" and result["layers"][-1]["converged"]:
        reason = "stopped early: the round repeated the last"
    layers = len(result["layers"])
    saved = "not saved (--no-db)" if args.no_db else f"thread {escape(args.thread)}"
    errors.print(
        f"{layers} layer{'s' if layers != 1 else ''} ({reason}), "
        f"{total['calls']} model calls, {total['total_tokens']} tokens; {saved}"
    )
    return 0
