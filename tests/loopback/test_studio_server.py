"""`langgraph dev` serves the graph offline, as LangGraph Studio sees it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from langgraph_sdk import get_client

# One worker runs them all: they share the module's `langgraph dev` server.
pytestmark = [pytest.mark.anyio, pytest.mark.server, pytest.mark.xdist_group("studio")]

if sys.version_info < (3, 11):
    # langgraph-cli's in-memory server (langgraph-api) installs on 3.11+ only;
    # CI runs this module on 3.11.
    pytest.skip("langgraph dev needs Python 3.11 or newer", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


def _config_in(home: Path) -> Path:
    """The repository's langgraph.json with its paths made absolute."""
    import json

    config = json.loads((ROOT / "langgraph.json").read_text())
    config["dependencies"] = [str(ROOT / d) for d in config["dependencies"]]
    config["graphs"] = {
        name: str(ROOT / spec) for name, spec in config["graphs"].items()
    }
    config["env"] = str(ROOT / config["env"])
    path = home / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    # The in-memory server keeps its threads in `.langgraph_api` under its
    # working directory: a fresh one per run, so no test sees old threads.
    home = tmp_path_factory.mktemp("langgraph_dev")
    cli = shutil.which("langgraph", path=os.path.dirname(sys.executable))
    assert cli, "langgraph-cli[inmem] is part of the dev dependencies"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(LANGGRAPH_CLI_NO_ANALYTICS="1", LANGSMITH_TRACING="false")
    process = subprocess.Popen(
        [
            cli,
            "dev",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--config",
            str(_config_in(home)),
        ],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ok", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"langgraph dev did not start:\n{output[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


async def test_xray_graph_shows_every_stage_of_the_layer(server_url):
    client = get_client(url=server_url)
    (assistant,) = await client.assistants.search(graph_id="attention_moa")
    graph = await client.assistants.get_graph(assistant["assistant_id"], xray=True)
    nodes = {node["id"] for node in graph["nodes"]}
    for stage in (
        "draft",
        "cross_attention",
        "self_attention",
        "refine",
        "summarize",
        "residual",
    ):
        assert f"layer:{stage}" in nodes
    assert {"prepare", "finish"} <= nodes


async def test_schemas_offer_the_chat_input_and_a_described_configuration(server_url):
    client = get_client(url=server_url)
    (assistant,) = await client.assistants.search(graph_id="attention_moa")
    schemas = await client.assistants.get_schemas(assistant["assistant_id"])
    assert list(schemas["input_schema"]["properties"]) == ["messages"]
    assert {"final_answer", "stop_reason", "layers", "usage"} <= set(
        schemas["output_schema"]["properties"]
    )
    knobs = schemas["context_schema"]["properties"]
    for knob in (
        "max_layers",
        "early_stopping",
        "cross_attention",
        "self_attention",
        "residual",
        "temperature",
    ):
        assert knobs[knob].get("description"), knob


async def test_a_threaded_run_answers_and_streams_layer_progress(server_url):
    client = get_client(url=server_url)
    thread = await client.threads.create()
    out = await client.runs.wait(
        thread["thread_id"],
        "attention_moa",
        input={"messages": [{"role": "user", "content": "Why is the sky blue?"}]},
        context={"max_layers": 2, "aggregator_model": "demo:boss"},
    )
    assert out["final_answer"].startswith("[demo] Boss's")
    assert out["stop_reason"] == "max_layers" and len(out["layers"]) == 2

    events = []
    async for part in client.runs.stream(
        thread["thread_id"],
        "attention_moa",
        input={"messages": [{"role": "user", "content": "And at night?"}]},
        context={"max_layers": 1},
        stream_mode=["custom"],
        stream_subgraphs=True,
    ):
        if part.event.startswith("custom"):
            events.append(part.data["event"])
    assert events == [
        "layer_start",
        "stage_done",
        "stage_done",
        "stage_done",
        "layer_end",
    ]
    state = await client.threads.get_state(thread["thread_id"])
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai"] * 2


async def test_the_agent_graph_calls_both_tools_and_answers_from_them(server_url):
    client = get_client(url=server_url)
    thread = await client.threads.create()
    question = "What time is it in 'Asia/Tokyo'? Also calculate '3.5 * 60'."
    out = await client.runs.wait(
        thread["thread_id"],
        "attention_moa_agent",
        input={"messages": [{"role": "user", "content": question}]},
    )
    messages = out["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "tool", "ai"]
    calls = {c["name"]: c["args"] for c in messages[1]["tool_calls"]}
    assert calls == {
        "local_time": {"timezone": "Asia/Tokyo"},
        "calculate": {"expression": "3.5 * 60"},
    }
    results = {m["name"]: m["content"] for m in messages[2:4]}
    assert results["calculate"] == "210.0" and "JST" in results["local_time"]
    assert "210.0" in messages[-1]["content"] and "JST" in messages[-1]["content"]


async def test_eval_generate_runs_on_the_server_and_skips_finished_threads(
    server_url, tmp_path
):
    import json

    data = ROOT.parent / "shared" / "benchmarks" / "mt_bench"
    command = [
        sys.executable,
        "-m",
        "attention_moa_graph.cli",
        "eval",
        "mt-bench",
        "generate",
        "--data",
        str(data),
        "--out",
        str(tmp_path),
        "--limit",
        "2",
        "--quiet",
        "--server",
        server_url,
        "--assistant",
        "attention_moa",
        "-p",
        "demo:alpha",
        "-p",
        "demo:beta",
        "-a",
        "demo:chair",
    ]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    answers = (tmp_path / "model_answer" / "attention-moa.jsonl").read_text()
    lines = [json.loads(line) for line in answers.splitlines()]
    assert [line["question_id"] for line in lines] == [81, 82]
    assert all(len(line["choices"][0]["turns"]) == 2 for line in lines)
    records = [
        json.loads(r) for r in (tmp_path / "records.jsonl").read_text().splitlines()
    ]
    assert all(turn["calls"] > 0 for r in records for turn in r["turns"])

    # Without the local journal the runner asks the server, which already holds
    # every finished thread: no new run is made.
    (tmp_path / "records.jsonl").unlink()
    client = get_client(url=server_url)
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    rewritten = (tmp_path / "model_answer" / "attention-moa.jsonl").read_text()
    assert [json.loads(line)["choices"] for line in rewritten.splitlines()] == [
        line["choices"] for line in lines
    ]
    from attention_moa_graph.evaluation.generation import thread_key
    from attention_moa_graph.evaluation.systems import SystemSpec

    system = SystemSpec(
        "attention-moa", ("demo:alpha", "demo:beta"), aggregator="demo:chair"
    )
    question = json.loads((data / "question.jsonl").read_text().splitlines()[0])
    first_turn = [
        {"role": "system", "content": "You are a helpful assistant."},  # FastChat's
        {"role": "user", "content": question["turns"][0]},
    ]
    thread = thread_key(system, first_turn)
    runs = await client.runs.list(thread)
    assert len(runs) == 1
