"""A real language model through every stage: the local llama.cpp runtime.

These tests need `attention-moa local install` (which `make test` runs). In CI
a missing runtime is an error; elsewhere the tests skip, saying why.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attention_moa_graph import create_attention_moa
from tests.helpers import ANY_TAG, run_python

# `make test` runs them after the other tests, alone (see the Makefile).
pytestmark = pytest.mark.local_model

IDLE = "ATTENTION_MOA_LOCAL_IDLE_SECONDS"
QUESTION = "What is the capital of France? Answer in one sentence."


@pytest.fixture(autouse=True)
def own_home(tmp_path, monkeypatch):
    """The tests' servers are their own, not those of the user's other processes."""
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture(scope="module")
def runtime():
    from attention_moa_graph.local import LocalRuntimeError, installed_runtime

    try:
        return installed_runtime()
    except LocalRuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes: it runs nothing.
    status = f"/proc/{pid}/status"
    if os.path.exists(status):
        with open(status) as lines:
            return "zombie" not in lines.read()
    return True


def test_a_real_model_answers_through_every_stage(runtime):
    from attention_moa_graph.local import server

    graph = create_attention_moa(
        ["local:smollm2@1", "local:smollm2@2"],
        aggregator="local:smollm2@0",
        max_layers=2,
        max_tokens=48,
        early_stopping=False,
    )
    result = graph.invoke({"messages": [("user", QUESTION)]})
    (lease,) = server._LEASES.values()
    pid = lease.server_pid
    assert alive(pid)

    texts = [result["final_answer"]]
    replies = 1  # the residual synthesis
    for record in result["layers"]:
        assert len(record["drafts"]) == 2, record["failures"]
        assert sum(map(len, record["critiques"].values())) == 4, record["failures"]
        # A tiny model may fail a refinement on every try (an empty reply, say):
        # the failure is recorded and the layer goes on with the other agent.
        missing = {"proposer_0", "proposer_1"} - set(record["refined"])
        assert record["refined"] and missing <= set(record["failures"])
        replies += 2 + 4 + len(record["refined"]) + 1
        texts += [*record["drafts"].values(), *record["refined"].values()]
        texts += [c for by in record["critiques"].values() for c in by.values()]
        texts.append(record["summary"])
    texts.append(result["layers"][1]["residual"])
    # Real text: every stage wrote something, none of it demo text or a tag.
    assert all(t and t.strip() for t in texts)
    assert not any(t.startswith("[demo]") or ANY_TAG.search(t) for t in texts)
    assert len(set(texts)) > len(texts) // 2  # not one reply echoed everywhere
    usage = result["usage"]
    assert (
        usage["total"]["calls"] == replies
    )  # (2 + 4 + 2 + 1) * 2 + 1 unless one failed
    for role in ("draft", "cross_attention", "self_attention", "refine", "summary"):
        assert usage["by_role"][role]["output_tokens"] > 0, role
        assert usage["by_role"][role]["input_tokens"] > 0, role
    # The server reports the prompt tokens it read from its cache.
    assert 0 < usage["total"]["cached_input_tokens"] < usage["total"]["input_tokens"]
    # Each call was held to max_tokens by the server.
    assert usage["total"]["output_tokens"] <= 48 * usage["total"]["calls"]

    server.stop_server(lease)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "llama-server outlived stop_server()"


def test_the_server_stops_once_its_last_user_is_killed(runtime, tmp_path):
    script = (
        "import os, signal\n"
        "from attention_moa_graph import create_attention_moa\n"
        "from attention_moa_graph.local import server\n"
        "graph = create_attention_moa(['local:smollm2@1', 'local:smollm2@2'],"
        " aggregator='local:smollm2@0', max_layers=1, max_tokens=8,"
        " cross_attention=False, self_attention=False)\n"
        "graph.invoke({'messages': [('user', 'Hi')]})\n"
        "(lease,) = server._LEASES.values()\n"
        "print(lease.server_pid, lease.keeper_pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), IDLE: "1"}
    done = run_python(script, timeout=120, env=env)
    assert done.returncode == -signal.SIGKILL, done.stderr
    server_pid, keeper_pid = map(int, done.stdout.split()[-2:])
    deadline = time.monotonic() + 15
    while (alive(server_pid) or alive(keeper_pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(server_pid), "llama-server outlived its last user"
    assert not alive(keeper_pid)
    assert not list((tmp_path / ".cache" / "attention-moa" / "servers").glob("*.json"))


def test_two_ask_processes_share_one_server_and_both_answer(runtime, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), IDLE: "30"}
    command = [sys.executable, "-m", "attention_moa_graph.cli", "ask", "--json"]
    command += ["--no-db", "-l", "1", "--max-tokens", "24", "Say hello."]
    asks = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [ask.communicate(timeout=300) for ask in asks]
    assert [ask.returncode for ask in asks] == [0, 0], outputs
    results = [json.loads(out) for out, _ in outputs]
    assert all(r["final_answer"].strip() for r in results)
    states = list((tmp_path / ".cache" / "attention-moa" / "servers").glob("*.json"))
    assert len(states) == 1  # one server for both
    state = json.loads(states[0].read_text())
    try:
        # Its log has a task for every call of both runs.
        log = states[0].with_suffix(".log").read_text()
        calls = sum(r["usage"]["total"]["calls"] for r in results)
        assert log.count("launch_slot_") == calls
        keepers = [
            p
            for p in Path("/proc").iterdir()
            if p.name.isdigit()
            and "local.keeper" in command_line(p)
            and str(tmp_path) in command_line(p)
        ]
        assert len(keepers) == 1
    finally:
        os.kill(state["keeper_pid"], signal.SIGTERM)


def command_line(process: Path) -> str:
    try:
        return (process / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_the_local_defaults_answer_an_easy_question_in_a_few_calls(runtime, tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), IDLE: "5"}
    done = subprocess.run(
        [sys.executable, "-m", "attention_moa_graph.cli", "ask", "--json", "--no-db"]
        + [QUESTION],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # Three agents of one model at temperature 0 agree: drafts and a summary.
    assert result["usage"]["total"]["calls"] <= 5
    assert result["stop_reason"] == "agreement"
    assert "Paris" in result["final_answer"]
