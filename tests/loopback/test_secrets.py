"""A planted API key never leaves the client: not in state, checkpoints, traces,
logs or CLI output."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from attention_moa_graph import Proposer, create_attention_moa
from tests.helpers import openai_model

pytestmark = pytest.mark.anyio

PLANTED = "sk-planted-2f9c41d7e8b3a605"


class KeepRuns(BaseTracer):
    """Every run a tracer would send, as JSON text."""

    def __init__(self) -> None:
        super().__init__()
        self.dumps: list[str] = []

    def _persist_run(self, run: Run) -> None:
        pass

    def _end_trace(self, run: Run) -> None:
        super()._end_trace(run)
        self.dumps.append(run.model_dump_json())

    def _on_run_update(self, run: Run) -> None:
        self.dumps.append(run.model_dump_json())


async def test_the_key_is_nowhere_but_in_the_request_header(
    fake_server, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "state.sqlite"
    tracer = KeepRuns()
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        graph = create_attention_moa(
            [
                Proposer(n, openai_model(fake_server.base_url, n, api_key=PLANTED))
                for n in ("a", "b")
            ],
            aggregator=openai_model(fake_server.base_url, "agg", api_key=PLANTED),
            max_layers=2,
            checkpointer=saver,
        )
        config = {"configurable": {"thread_id": "s"}, "callbacks": [tracer]}
        result = await graph.ainvoke({"messages": [("user", "hi")]}, config)
        history = [s async for s in graph.aget_state_history(config)]

    assert fake_server.log[0].authorization == f"Bearer {PLANTED}"  # it was used
    assert PLANTED not in json.dumps(result, default=str)
    assert PLANTED not in json.dumps([s.values for s in history], default=str)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("state.sqlite*"))
    assert result["final_answer"].encode() in stored  # the search sees the state
    assert PLANTED.encode() not in stored
    assert tracer.dumps and all(PLANTED not in d for d in tracer.dumps)
    assert PLANTED not in caplog.text


def ask(server, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["OPENAI_API_KEY"] = PLANTED
    command = [sys.executable, "-m", "attention_moa_graph.cli", "ask", "hi"]
    models = ["-p", "a", "-p", "b", "-a", "agg", "--base-url", server.base_url]
    return subprocess.run(
        [*command, *models, "-l", "1", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.mark.slow
def test_the_cli_never_prints_the_key(fake_server, tmp_path):
    done = ask(fake_server, "--json", "--db", str(tmp_path / "cli.sqlite"))
    assert done.returncode == 0, done.stderr
    assert fake_server.log[0].authorization == f"Bearer {PLANTED}"
    assert PLANTED not in done.stdout + done.stderr
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("cli.sqlite*"))
    assert json.loads(done.stdout)["final_answer"].encode() in stored
    assert PLANTED.encode() not in stored

    fake_server.scripted_faults["a"] = ["401"]
    failed = ask(fake_server, "--no-db")
    assert failed.returncode == 1 and "401" in failed.stderr
    assert PLANTED not in failed.stdout + failed.stderr


async def test_a_key_echoed_by_a_provider_error_is_not_stored_or_shown(
    tmp_path, monkeypatch
):
    from attention_moa_graph import MoAError
    from attention_moa_graph.testing import ScriptedChatModel
    from tests.helpers import fast_retries

    monkeypatch.setenv("UPSTREAM_TOKEN", "tok-9b1e77c4d02a5f38")
    echoes = {
        "b": "connection reset; key sk-live-0a1b2c3d4e5f60718293",
        "c": "upstream said: invalid token tok-9b1e77c4d02a5f38",
    }

    def failing(name):
        def reply(messages):
            raise ConnectionError(echoes[name])

        return ScriptedChatModel(reply=reply)

    db = tmp_path / "state.sqlite"
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        graph = create_attention_moa(
            [
                Proposer("a", ScriptedChatModel()),
                Proposer("b", failing("b")),
                Proposer("c", failing("c")),
            ],
            aggregator=ScriptedChatModel(),
            max_layers=1,
            retry_policy=fast_retries(1),
            checkpointer=saver,
        )
        config = {"configurable": {"thread_id": "t"}}
        result = await graph.ainvoke({"messages": [("user", "hi")]}, config)
    failures = result["layers"][0]["failures"]
    assert set(failures) == {"b", "c"}
    assert "[redacted]" in failures["b"] and "[redacted]" in failures["c"]
    stored = db.read_bytes()
    for secret in ("sk-live-0a1b2c3d4e5f60718293", "tok-9b1e77c4d02a5f38"):
        assert secret.encode() not in stored
        assert secret not in json.dumps(failures)

    # A failure that ends the run says what failed, without the key.
    graph = create_attention_moa(
        [Proposer("b", failing("b")), Proposer("c", failing("c"))],
        aggregator=ScriptedChatModel(),
        max_layers=1,
        retry_policy=fast_retries(1),
    )
    with pytest.raises(MoAError) as raised:
        await graph.ainvoke({"messages": [("user", "hi")]})
    assert "sk-live" not in str(raised.value) and "[redacted]" in str(raised.value)


@pytest.mark.slow
def test_a_key_under_any_variable_name_is_redacted_by_its_value(fake_server, tmp_path):
    # Not key-shaped, and its variable's name says nothing of a secret.
    credential = "cred-5e0d9a72c4b81f36"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["MYCRED"] = credential
    fake_server.scripted_faults["a"] = ["401"]
    db = tmp_path / "cli.sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "attention_moa_graph.cli", "ask", "hi"]
        + ["-p", "a", "-p", "b", "-a", "agg", "--base-url", fake_server.base_url]
        + ["-l", "1", "--api-key-env", "MYCRED", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert fake_server.log[0].authorization == f"Bearer {credential}"
    assert "Incorrect API key provided: [redacted]" in done.stdout + done.stderr
    assert credential not in done.stdout + done.stderr
    # The printed resume command names the variable again, not its value.
    assert "--base-url" in done.stderr and "--api-key-env MYCRED" in done.stderr
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("cli.sqlite*"))
    assert stored and credential.encode() not in stored
