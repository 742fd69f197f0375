"""Shared fixtures: no provider keys, no tracing, and helpers to observe calls."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from langchain_core.tracers import BaseTracer

# Checked by mypy, never run (see its docstring).
collect_ignore = ["typecheck"]

PROVIDER_KEYS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
    "MISTRAL_API_KEY",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
    "ATTENTION_MOA_PROPOSERS",
    "ATTENTION_MOA_AGGREGATOR",
    "ATTENTION_MOA_MAX_LAYERS",
)


@pytest.fixture(autouse=True)
def _no_keys_no_tracing(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A test that builds a real provider client by mistake fails loudly.

    The CLI's saved threads go to the test's own directory, never the home.
    """
    for key in PROVIDER_KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ATTENTION_MOA_DB", str(tmp_path / "threads.sqlite"))
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "false")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CallLog(BaseTracer):
    """Records the `moa_*` metadata of every chat model call, as a tracer sees it."""

    def __init__(self) -> None:
        super().__init__(_schema_format="original+chat")  # chat model runs too
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _persist_run(self, run: Any) -> None:
        pass

    def _on_chat_model_start(self, run: Any) -> None:
        extra = run.extra or {}
        metadata = extra.get("metadata") or {}
        moa = {k: v for k, v in metadata.items() if k.startswith("moa_")}
        params = extra.get("invocation_params") or {}
        for name in ("temperature", "max_tokens"):
            if name in params:
                moa[name] = params[name]
        with self._lock:
            self.calls.append(moa)

    def count(self, **where: Any) -> int:
        return sum(all(c.get(k) == v for k, v in where.items()) for c in self.calls)

    def by_layer_and_role(self) -> Counter[tuple[int, str]]:
        return Counter((c["moa_layer"], c["moa_role"]) for c in self.calls)


@pytest.fixture
def call_log() -> CallLog:
    return CallLog()


@pytest.fixture
def fake_server():
    """A loopback OpenAI-compatible server, stopped after the test."""
    from attention_moa_graph.testing.fake_server import FakeOpenAIServer

    server = FakeOpenAIServer(hang_seconds=5).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_dsn():
    """A throwaway PostgreSQL server from Debian's packages, on a free port.

    In CI (`CI` set) a missing server is an error; elsewhere the tests skip.
    """
    import os

    from tests.postgres_server import initdb_path, postgres_server

    if initdb_path() is None:
        message = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with postgres_server() as dsn:
        yield dsn
