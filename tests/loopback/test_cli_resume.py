"""The CLI saves every run; a run stopped by failures resumes from the terminal.

Each command runs in a process of its own, as from a shell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def ask(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "attention_moa_graph.cli", "ask", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def options(server, db) -> list[str]:
    return [
        "-p",
        "a",
        "-p",
        "b",
        "-p",
        "c",
        "-a",
        "agg",
        "--base-url",
        server.base_url,
        "--min-agents",
        "3",
        "--retries",
        "1",
        "-l",
        "2",
        "--db",
        str(db),
        "--thread",
        "t1",
    ]


def test_a_stopped_run_resumes_with_the_thread_it_printed(fake_server, tmp_path):
    fake_server.scripted_faults["b"] = ["500", "500"]  # the draft, then its retry
    stopped = ask("What is a monsoon?", *options(fake_server, tmp_path / "t.db"))
    assert stopped.returncode == 1
    assert "the run stopped" in stopped.stderr and "min_agents" in stopped.stderr
    assert "attention-moa ask --resume --thread t1" in stopped.stderr
    models = [r.model for r in fake_server.log]
    # Three drafts, then b's strict second try once a and c were done.
    assert sorted(models) == ["a", "b", "b", "c"] and models[-1] == "b"
    before = len(fake_server.log)

    resumed = ask("--resume", "--json", *options(fake_server, tmp_path / "t.db"))
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["thread"] == "t1"
    assert result["stop_reason"] == "max_layers" and len(result["layers"]) == 2
    redone = [
        r.model
        for r in fake_server.log[before:]
        if r.messages == [{"role": "user", "content": "What is a monsoon?"}]
    ]
    assert redone == ["b"]  # a's and c's finished drafts were kept


def test_ctrl_c_prints_the_resume_command_not_a_traceback(fake_server, tmp_path):
    import signal
    import time

    fake_server.latency = 0.5
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    process = subprocess.Popen(
        [sys.executable, "-m", "attention_moa_graph.cli", "ask", "Why?"]
        + options(fake_server, tmp_path / "t.db"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while not fake_server.log and time.monotonic() < deadline:
        time.sleep(0.05)  # the drafts are in flight
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "Resume it with: attention-moa ask --resume --thread t1" in err
