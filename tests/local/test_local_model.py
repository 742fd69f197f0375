"""A real language model through every stage: the local llama.cpp runtime.

These tests need `attention-moa local install` (which `make test` runs). In CI
a missing runtime is an error; elsewhere the tests skip, saying why.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from attention_moa_graph import create_attention_moa
from tests.helpers import ANY_TAG, run_python

# One worker runs them all: they share the module's local server.
pytestmark = [pytest.mark.local_model, pytest.mark.xdist_group("local_model")]

QUESTION = "What is the capital of France? Answer in one sentence."


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
    (started,) = server._SERVERS.values()
    pid = started.pid
    assert pid is not None and alive(pid)

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
    # Each call was held to max_tokens by the server.
    assert usage["total"]["output_tokens"] <= 48 * usage["total"]["calls"]

    server.stop_servers()
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "llama-server outlived stop_servers()"


def test_the_server_dies_with_a_process_that_is_killed(runtime):
    script = (
        "import os, signal\n"
        "from attention_moa_graph import create_attention_moa\n"
        "from attention_moa_graph.local import server\n"
        "graph = create_attention_moa(['local:smollm2@1', 'local:smollm2@2'],"
        " aggregator='local:smollm2@0', max_layers=1, max_tokens=8,"
        " cross_attention=False, self_attention=False)\n"
        "graph.invoke({'messages': [('user', 'Hi')]})\n"
        "(s,) = server._SERVERS.values()\n"
        "print(s.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = run_python(script, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    pid = int(done.stdout.split()[-1])
    deadline = time.monotonic() + 15
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "llama-server was orphaned by a killed process"
