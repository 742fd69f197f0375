"""Builders for tests: named fake agents and scripted aggregators."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from attention_moa_graph import STOP_SIGNAL, Proposer
from attention_moa_graph.testing import ReplyFn, ScriptedChatModel

ANY_TAG = re.compile(
    r"</?[a-z-]+(?:-\d+)?-(?:[0-9a-f]{8,12}|(?=[a-f]*\d)[0-9a-f]{4,7}|…)>"
)
"""Anything shaped like a fence tag (a name, maybe a number, a digest): no
stage's output may carry one."""


def run_python(
    script: str, *flags: str, timeout: float = 60, **options: Any
) -> subprocess.CompletedProcess[str]:
    """Run `script` in a fresh interpreter (this one), capturing its output as text."""
    return subprocess.run(
        [sys.executable, *flags, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        **options,
    )


def fake_agents(names: Sequence[str], latency: float = 0.0) -> list[Proposer]:
    """One fake model per agent, so every agent's replies are distinct."""
    return [
        Proposer(name, ScriptedChatModel(model_name=name, latency=latency))
        for name in names
    ]


def prompt_text(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(str(m.text) for m in messages)


def rounds_shown(messages: Sequence[BaseMessage]) -> int:
    """The latest round a residual or verdict prompt shows: the layer asking."""
    numbers = re.findall(r"<round-(\d+)-", prompt_text(messages))
    return max(map(int, numbers), default=0)


def is_verdict_prompt(messages: Sequence[BaseMessage]) -> bool:
    return '"better"' in prompt_text(messages) and rounds_shown(messages) > 0


def is_residual_prompt(messages: Sequence[BaseMessage]) -> bool:
    return rounds_shown(messages) > 0 and not is_verdict_prompt(messages)


def aggregator_stopping_at(layer: int, reply_otherwise: str = "") -> ReplyFn:
    """An aggregator that stops the loop from `layer` on.

    Its verdict is `{"better": false}` from that layer on (the default stop
    decision), and its residual reply the stop signal (`stop_decision="signal"`).
    """

    def reply(messages: Sequence[BaseMessage]) -> str:
        if is_verdict_prompt(messages):
            stop = rounds_shown(messages) >= layer
            return '{"better": false}' if stop else '{"better": true}'
        if is_residual_prompt(messages) and rounds_shown(messages) >= layer:
            return STOP_SIGNAL
        digest = abs(hash(prompt_text(messages))) % 10**8
        return reply_otherwise or f"aggregate {digest}"

    return reply


def openai_model(base_url: str, model: str, **kwargs):
    """The real langchain-openai client, pointed at a loopback server."""
    from langchain_openai import ChatOpenAI

    settings = {
        "api_key": "sk-test-not-a-real-key",
        "timeout": 10,
        "max_retries": 0,
        "stream_usage": True,
    }
    settings.update(kwargs)
    return ChatOpenAI(model=model, base_url=base_url, **settings)


def fast_retries(attempts: int = 3):
    """A retry policy with tiny pauses, for tests."""
    from langgraph.types import RetryPolicy

    from attention_moa_graph._calls.errors import is_transient

    return RetryPolicy(
        max_attempts=attempts,
        initial_interval=0.01,
        backoff_factor=1.0,
        jitter=False,
        retry_on=is_transient,
    )


class Rendezvous(ScriptedChatModel):
    """A fake whose calls of one role wait until `expected` calls are in flight.

    Concurrency is then checked without timing: calls that really run together
    all meet and the peak reaches `expected`; calls run in waves never do, and
    each gives up after `patience` seconds with the peak short of it.
    """

    role: str = "cross_attention"
    expected: int = 1
    patience: float = 10.0
    met: bool = False

    def _waits(self, run_manager) -> bool:
        # Cross- and self-attention calls share one stage, so they meet together.
        stage = {"self_attention": "cross_attention"}
        role = run_manager.metadata.get("moa_role") if run_manager else None
        return stage.get(role, role) == self.role

    def _meeting(self, deadline: float) -> bool:
        """True once `expected` calls were in flight together (or time is up)."""
        import time

        if self._in_flight >= self.expected:
            self.met = True
        return self.met or time.monotonic() >= deadline

    def _answer_now(self, messages, run_manager, kwargs=None):
        import time

        self._enter()
        try:
            deadline = time.monotonic() + self.patience
            while self._waits(run_manager) and not self._meeting(deadline):
                time.sleep(0.002)
            return self._answer(messages, run_manager, kwargs)
        finally:
            self._leave()

    async def _answer_later(self, messages, run_manager, kwargs=None):
        import asyncio
        import time

        self._enter()
        try:
            deadline = time.monotonic() + self.patience
            while self._waits(run_manager) and not self._meeting(deadline):
                await asyncio.sleep(0.002)
            return self._answer(messages, run_manager, kwargs)
        finally:
            self._leave()


def run_eval(*args: str, timeout: float = 300):
    """`attention-moa eval ARGS` in its own process, as a user runs it."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "attention_moa_graph.cli", "eval", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(
    condition: Callable[[], bool], timeout: float = 10.0, what: str = ""
) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds.

    For waits a loaded machine stretches (a process or run starting late).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting {what}".strip())
        time.sleep(0.02)
