"""Running a system over a benchmark: concurrency, progress, resume, records.

Every user turn of every item is one thread, whose id is a digest of the
system's fingerprint and the full request (all messages so far). The graph
saves each step to a checkpointer, so an interrupted evaluation started again
with the same command skips finished turns and resumes unfinished ones
without repeating the model calls they had completed. Finished items are also
appended to `records.jsonl` with their calls, tokens and wall time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from langchain_core.language_models import BaseChatModel
from typing_extensions import TypedDict

from attention_moa_graph._calls.errors import MoAError
from attention_moa_graph.evaluation.bounded import run_each
from attention_moa_graph.evaluation.datafiles import (
    BenchmarkDataError,
    read_json,
    write_json,
)
from attention_moa_graph.evaluation.systems import SystemSpec

RUN_FILE = "run.json"
RECORDS_FILE = "records.jsonl"
CHECKPOINTS_FILE = "checkpoints.sqlite"


@dataclass(frozen=True)
class WorkItem:
    """One benchmark item: its id and its user turns (answered in order)."""

    id: str
    turns: tuple[str, ...]
    temperature: float | None = None
    system: str | None = None
    """A system message sent before the first turn (MT-Bench's, as FastChat)."""
    max_tokens: int | None = None
    """The token cap of every model call (MT-Bench: FastChat's 1,024)."""


class TurnRecord(TypedDict):
    """One answered turn."""

    answer: str
    layer_outputs: list[str]
    """Attention-MoA: each layer's output (the depth study); else empty."""
    calls: int
    input_tokens: int
    output_tokens: int


class ItemRecord(TypedDict):
    """One answered item, as a line of `records.jsonl`."""

    id: str
    turns: list[TurnRecord]
    calls: int
    input_tokens: int
    output_tokens: int
    wall_seconds: float


class Backend(Protocol):
    """Where the graph runs: in this process, or on a LangGraph Server."""

    async def run_turn(
        self, thread: str, messages: list[dict[str, str]], context: dict[str, Any]
    ) -> dict[str, Any]:
        """Answer the last message of `messages` (or finish a saved run of it)."""
        ...


def thread_key(system: SystemSpec, messages: Sequence[dict[str, str]]) -> str:
    """A UUID made from the system's fingerprint and the full request."""
    text = json.dumps([system.fingerprint(), list(messages)], sort_keys=True)
    return str(uuid.UUID(hex=hashlib.sha256(text.encode()).hexdigest()[:32]))


class LocalBackend:
    """The compiled graph in this process, saving steps to SQLite."""

    def __init__(self, graph: Any) -> None:
        """Use a graph compiled with a checkpointer."""
        self.graph = graph

    async def run_turn(
        self, thread: str, messages: list[dict[str, str]], context: dict[str, Any]
    ) -> dict[str, Any]:
        """Skip a finished thread, resume an interrupted one, else start it."""
        config = {"configurable": {"thread_id": thread}}
        saved = await self.graph.aget_state(config)
        if saved.values.get("final_answer") and not saved.next:
            return dict(saved.values)
        payload = None if saved.next else {"messages": messages}
        # "sync": each step is on disk before the next starts, so an interrupt
        # (Ctrl-C, a killed job) loses no finished call.
        return dict(
            await self.graph.ainvoke(
                payload, config, context=context, durability="sync"
            )
        )


T = TypeVar("T")

REQUEST_TIMEOUT = 30.0
"""Seconds a LangGraph Server may take over a request other than a run."""


class ServerBackend:
    """A LangGraph Server deployment of the graph, through `langgraph_sdk`."""

    def __init__(
        self,
        url: str,
        assistant: str,
        api_key: str | None = None,
        *,
        timeout: float = 600.0,
    ) -> None:
        """Connect to `url` and run `assistant` (a graph id or assistant id).

        A run that takes longer than `timeout` seconds, or any other request
        that takes longer than `REQUEST_TIMEOUT`, fails the item with an error
        that names the server (a server that accepts and never answers would
        otherwise hold the whole evaluation).
        """
        from langgraph_sdk import get_client

        self.client = get_client(url=url, api_key=api_key)
        self.url = url
        self.assistant = assistant
        self.timeout = timeout

    async def _within(self, seconds: float, call: Awaitable[T], what: str) -> T:
        try:
            return await asyncio.wait_for(call, seconds)
        except asyncio.TimeoutError:
            raise MoAError(
                f"the LangGraph Server at {self.url} did not answer {what} within "
                f"{seconds:g} s. Check that it is the server you meant (--server) "
                "and that it is not stuck; finished items are kept, so the same "
                "command resumes."
            ) from None

    async def run_turn(
        self, thread: str, messages: list[dict[str, str]], context: dict[str, Any]
    ) -> dict[str, Any]:
        """One thread per turn on the server; a finished thread is not re-run."""
        try:
            return await self._run_turn(thread, messages, context)
        except httpx.TransportError as exc:
            raise MoAError(
                f"cannot reach the LangGraph Server at {self.url} "
                f"({type(exc).__name__}: {exc or 'no detail'}). Start it (for "
                "example `langgraph dev`) or check --server; finished items are "
                "kept, so the same command resumes."
            ) from None
        except httpx.HTTPStatusError as exc:
            raise MoAError(
                f"the LangGraph Server at {self.url} refused a run of "
                f"{self.assistant!r}: HTTP {exc.response.status_code} "
                f"{exc.response.text[:200]}. Check --server and --assistant."
            ) from None

    async def _run_turn(
        self, thread: str, messages: list[dict[str, str]], context: dict[str, Any]
    ) -> dict[str, Any]:
        await self._within(
            REQUEST_TIMEOUT,
            self.client.threads.create(thread_id=thread, if_exists="do_nothing"),
            "a request to make a thread",
        )
        state = await self._within(
            REQUEST_TIMEOUT,
            self.client.threads.get_state(thread),
            "a request for a thread's state",
        )
        values = state.get("values") or {}
        if (
            isinstance(values, dict)
            and values.get("final_answer")
            and not state.get("next")
        ):
            return values
        result = await self._within(
            self.timeout,
            self.client.runs.wait(
                thread,
                self.assistant,
                input={"messages": list(messages)},  # type: ignore[dict-item]
                context=context or None,
                raise_error=True,
            ),
            "a run (--server-timeout)",
        )
        if not isinstance(result, dict) or "final_answer" not in result:
            raise RuntimeError(
                f"the server's run on thread {thread} gave {result!r:.300}"
            )
        return result


def _turn_record(values: dict[str, Any]) -> TurnRecord:
    total = (values.get("usage") or {}).get("total") or {}
    return TurnRecord(
        answer=str(values["final_answer"]),
        layer_outputs=[record["output"] for record in values.get("layers") or []],
        calls=int(total.get("calls", 0)),
        input_tokens=int(total.get("input_tokens", 0)),
        output_tokens=int(total.get("output_tokens", 0)),
    )


async def answer_item(
    backend: Backend, system: SystemSpec, item: WorkItem
) -> ItemRecord:
    """Answer every turn of an item; turn k sees the answers of turns before it."""
    started = time.perf_counter()
    messages: list[dict[str, str]] = []
    if item.system is not None:
        messages.append({"role": "system", "content": item.system})
    turns: list[TurnRecord] = []
    context: dict[str, Any] = {}
    if item.temperature is not None:
        context["temperature"] = item.temperature
    if item.max_tokens is not None:
        context["max_tokens"] = item.max_tokens
    for question in item.turns:
        messages.append({"role": "user", "content": question})
        values = await backend.run_turn(
            thread_key(system, messages), list(messages), context
        )
        turn = _turn_record(values)
        turns.append(turn)
        messages.append({"role": "assistant", "content": turn["answer"]})
    return ItemRecord(
        id=item.id,
        turns=turns,
        calls=sum(t["calls"] for t in turns),
        input_tokens=sum(t["input_tokens"] for t in turns),
        output_tokens=sum(t["output_tokens"] for t in turns),
        wall_seconds=round(time.perf_counter() - started, 3),
    )


def read_records(out: Path) -> dict[str, ItemRecord]:
    """The items already answered in `out` (a torn last line is ignored)."""
    path = out / RECORDS_FILE
    records: dict[str, ItemRecord] = {}
    if not path.exists():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by an interruption: redone on resume
        records[record["id"]] = record
    return records


def protocol_of(items: Sequence[WorkItem]) -> dict[str, Any]:
    """What every request of a run sends besides the question (system, cap)."""
    first = items[0] if items else WorkItem("", ())
    return {"system_message": first.system, "max_tokens": first.max_tokens}


def claim_directory(
    out: Path,
    benchmark: str,
    system: SystemSpec,
    protocol: dict[str, Any] | None = None,
) -> None:
    """Start or continue a run in `out`; refuse one made by another system.

    `protocol` (see `protocol_of`) must match too: answers made with another
    system message or token cap are not mixed into one run.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / RUN_FILE
    described = {
        "benchmark": benchmark,
        "system": system.describe(),
        "fingerprint": system.fingerprint(),
        "protocol": protocol or {},
    }
    if path.exists():
        saved = read_json(path, "run description")
        if (
            saved.get("fingerprint") != described["fingerprint"]
            or saved.get("benchmark") != benchmark
        ):
            raise BenchmarkDataError(
                f"{out} holds a {saved.get('benchmark')} run of another system "
                f"({saved.get('system')}); use a new --out directory for this one."
            )
        if saved.get("protocol", {}) != described["protocol"]:
            raise BenchmarkDataError(
                f"{out} holds answers made with other request settings "
                f"({saved.get('protocol', 'from an older version')}, now "
                f"{described['protocol']}); use a new --out directory."
            )
        return
    write_json(path, described)


@asynccontextmanager
async def local_backend(
    out: Path, system: SystemSpec, models: dict[str, BaseChatModel] | None = None
) -> AsyncIterator[LocalBackend]:
    """The system's graph with its steps saved in `out/checkpoints.sqlite`."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = out / CHECKPOINTS_FILE
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        try:
            await saver.setup()
        except sqlite3.DatabaseError as exc:
            raise BenchmarkDataError(
                f"{path} cannot be used ({exc}): move it aside to redo the items "
                "not yet in records.jsonl from scratch (finished answers are kept)."
            ) from None
        yield LocalBackend(system.build(checkpointer=saver, models=models))


class Progress(Protocol):
    """Told about each finished item (a progress bar, or nothing)."""

    def advance(self, record: Mapping[str, Any]) -> None:
        """One more item (or judgment) is done."""
        ...


async def run_items(
    backend: Backend,
    system: SystemSpec,
    items: Sequence[WorkItem],
    out: Path,
    *,
    concurrency: int = 4,
    progress: Progress | None = None,
) -> dict[str, ItemRecord]:
    """Answer the items not yet in `out/records.jsonl`, `concurrency` at a time.

    Returns every item's record, in `items` order. When an item fails, no new
    item starts, the items in flight finish, and the first error is raised;
    finished items and every saved step are kept, so the same call resumes.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}.")
    done = read_records(out)
    todo = [item for item in items if item.id not in done]
    journal = (out / RECORDS_FILE).open("a", encoding="utf-8")

    async def one(item: WorkItem) -> None:
        record = await answer_item(backend, system, item)
        # No await between write and flush: lines never interleave.
        journal.write(json.dumps(record, ensure_ascii=False) + "\n")
        journal.flush()
        done[item.id] = record
        if progress is not None:
            progress.advance(record)

    try:
        await run_each(todo, one, concurrency)
    finally:
        journal.close()
    return {item.id: done[item.id] for item in items if item.id in done}
