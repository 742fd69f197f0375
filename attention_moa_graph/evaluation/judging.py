"""Calling a judge model over many prompts: concurrency, retries, resume.

Each judgment is appended to a journal as it arrives, keyed by the item, so
an interrupted judging run started again pays only for what is missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.runnables import RunnableConfig

from attention_moa_graph._calls.policy import CallPolicy
from attention_moa_graph._calls.runner import CallRunner
from attention_moa_graph.evaluation.bounded import run_each
from attention_moa_graph.evaluation.generation import Progress


@dataclass(frozen=True)
class JudgeJob:
    """One judge call and how to turn its reply into a saved row."""

    key: str
    messages: list[dict[str, str]]
    row: Callable[[BaseMessage, float], dict[str, Any]]
    """Reply and seconds taken -> the row to save."""
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def read_journal(path: Path) -> dict[str, dict[str, Any]]:
    """Rows saved so far, by key (a torn last line is ignored)."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        rows[entry["key"]] = entry["row"]
    return rows


async def run_judge(
    judge: BaseChatModel,
    jobs: Sequence[JudgeJob],
    journal: Path,
    *,
    concurrency: int = 8,
    policy: CallPolicy | None = None,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Make the judge calls not yet in `journal`; return every row by key.

    When a call fails after its retries, no new call starts, the calls in
    flight finish and are saved, and the first error is raised.
    """
    runner = CallRunner(policy or CallPolicy())
    rows = read_journal(journal)
    todo = [job for job in jobs if job.key not in rows]
    config: RunnableConfig = {"run_name": "judge", "metadata": {"moa_role": "judge"}}
    journal.parent.mkdir(parents=True, exist_ok=True)
    handle = journal.open("a", encoding="utf-8")

    async def one(job: JudgeJob) -> None:
        messages = convert_to_messages(
            [(m["role"], m["content"]) for m in job.messages]
        )
        started = time.perf_counter()
        reply = await runner.call(
            judge,
            messages,  # type: ignore[arg-type]
            config,
            dict(job.kwargs),
        )
        assert reply is not None  # no deadline: a reply or an error
        row = job.row(reply, time.perf_counter() - started)
        # No await between write and flush: lines never interleave.
        entry = {"key": job.key, "row": row}
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        handle.flush()
        rows[job.key] = row
        if progress is not None:
            progress.advance(row)

    try:
        await run_each(todo, one, concurrency)
    finally:
        handle.close()
    return rows
