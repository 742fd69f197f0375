"""The CLI saves every run; a run stopped by failures resumes from the terminal.

Each command runs in a process of its own, as from a shell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Every test runs the command in processes of its own.
pytestmark = pytest.mark.slow


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
        # As at a terminal: a suite started in the background by a shell without
        # job control inherits SIGINT ignored, and Python then never sees Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not fake_server.log and time.monotonic() < deadline:
        time.sleep(0.05)  # the drafts are in flight
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "Resume it with: attention-moa ask --resume --thread t1" in err
    # The interrupted process held the thread; gone, it holds nothing.
    fake_server.latency = 0.0
    resumed = ask("--resume", *options(fake_server, tmp_path / "t.db"))
    assert resumed.returncode == 0, resumed.stderr


def _start(server, db, question: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.Popen(
        [sys.executable, "-m", "attention_moa_graph.cli", "ask", question]
        + options(server, db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_calls(server) -> None:
    import time

    deadline = time.monotonic() + 60
    while not server.log and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.log, "the first run made no call"


def _saved_messages(db, thread: str) -> list[str]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    with SqliteSaver.from_conn_string(str(db)) as saver:
        saved = saver.get_tuple({"configurable": {"thread_id": thread}})
    assert saved is not None
    return [m.content for m in saved.checkpoint["channel_values"]["messages"]]


def test_a_busy_thread_is_refused_at_once_and_nothing_is_written(fake_server, tmp_path):
    fake_server.latency = 1.0  # the first run takes 8 s or more: 8 stages in turn
    db = tmp_path / "t.db"
    first = _start(fake_server, db, "Why is the sea salty?")
    _wait_for_calls(fake_server)
    for args in (["Why is the sky blue?"], ["--resume"]):
        second = ask(*args, *options(fake_server, db))
        assert first.poll() is None, "the first run ended too soon to test"
        assert second.returncode == 2, second.stderr
        assert "thread t1 is busy: process" in " ".join(second.stderr.split())
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    asked = {r.messages[-1]["content"] for r in fake_server.log}
    assert not any("sky" in text for text in asked)  # the second asked nothing
    messages = _saved_messages(db, "t1")
    assert len(messages) == 2 and messages[0] == "Why is the sea salty?"
    # Free again once the first has finished.
    again = ask("Why is the sky blue?", *options(fake_server, db))
    assert again.returncode == 0, again.stderr
    assert len(_saved_messages(db, "t1")) == 4


def test_a_thread_whose_process_was_killed_is_free_again(fake_server, tmp_path):
    import signal

    fake_server.latency = 0.3
    db = tmp_path / "t.db"
    first = _start(fake_server, db, "Why is the sea salty?")
    _wait_for_calls(fake_server)
    first.send_signal(signal.SIGKILL)  # no clean-up runs
    first.communicate(timeout=60)
    fake_server.latency = 0.0
    again = ask("Why is the sky blue?", *options(fake_server, db))
    assert again.returncode == 0, again.stderr


def test_resume_with_other_models_is_refused_naming_both(fake_server, tmp_path):
    db = tmp_path / "t.db"
    fake_server.scripted_faults["b"] = ["500", "500"]
    stopped = ask("What is a monsoon?", *options(fake_server, db))
    assert stopped.returncode == 1
    hint = " ".join(stopped.stderr.split())
    assert (
        "Resume it with: attention-moa ask --resume --thread t1 -p a -p b -p c "
        f"--aggregator agg --base-url {fake_server.base_url}"
    ) in hint
    before = len(fake_server.log)

    other = options(fake_server, db)
    other[other.index("c")] = "d"
    refused = ask("--resume", *other)
    assert refused.returncode == 2, refused.stderr
    text = " ".join(refused.stderr.split())
    assert "was run with proposers a, b, c and aggregator agg" in text
    assert "this command gives proposers a, b, d and aggregator agg" in text
    assert "Resume with the saved ones: attention-moa ask --resume --thread t1" in text
    assert len(fake_server.log) == before  # no call was made

    resumed = ask("--resume", *options(fake_server, db))
    assert resumed.returncode == 0, resumed.stderr
