"""Crash and resume: a run killed with SIGKILL mid-layer resumes from its checkpoint
and repeats no model call whose result had been recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attention_moa_graph.testing.fake_server import FakeOpenAIServer
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]


def critique_of(model: str, messages) -> bool:
    text = " ".join(str(m.get("content")) for m in messages)
    return model == "c" and "colleague's answer" in text


class StallLayerTwo:
    """Latency: c's cross-attention calls of layer 2 (its 3rd and 4th) stall."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, model, messages) -> float:
        if critique_of(model, messages):
            self.seen += 1
            if self.seen in (3, 4):
                return 60.0
        return 0.02


def run(args: list[str], **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.loopback.durable_run", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def body(record) -> str:
    return json.dumps([record.model, record.messages], sort_keys=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_args(request, tmp_path):
    if request.param == "sqlite":
        return ["--sqlite", str(tmp_path / "checkpoints.sqlite")]
    dsn = request.getfixturevalue("postgres_dsn")
    return ["--postgres", dsn]


@pytest.mark.slow
def test_a_run_killed_mid_layer_resumes_without_repeating_recorded_calls(store_args):
    stall = StallLayerTwo()
    with FakeOpenAIServer(latency=stall) as server:
        thread = f"crash-{time.monotonic_ns()}"
        first = run([server.base_url, thread, *store_args])
        wait_for(
            lambda: stall.seen >= 4 and first.poll() is None,
            60.0,
            "for the run to reach layer 2",
        )

        def others_done() -> bool:
            with server._lock:
                return all(
                    r.finished or critique_of(r.model, r.messages) for r in server.log
                )

        wait_for(others_done, 60.0, "for the run to reach layer 2")
        time.sleep(1.0)  # let the finished calls' writes reach the checkpointer
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        assert first.returncode == -signal.SIGKILL
        with server._lock:
            before = list(server.log)
        recorded = {body(r) for r in before if r.finished}
        in_flight = [r for r in before if not r.finished]
        assert len(in_flight) == 2  # c's two stalled critiques of layer 2

        resumed = run([server.base_url, thread, *store_args, "--resume"])
        out, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        with server._lock:
            after = server.log[len(before) :]

        repeated = [r for r in after if body(r) in recorded]
        assert repeated == [], f"resume repeated {len(repeated)} recorded calls"
        assert {body(r) for r in in_flight} <= {body(r) for r in after}

        fresh = run([server.base_url, thread + "-clean", *store_args])
        out, err = fresh.communicate(timeout=120)
        assert fresh.returncode == 0, err
        clean = json.loads(out.strip().splitlines()[-1])

    assert result["layers"] == 3
    assert result["final_answer"] == clean["final_answer"]
    # Every call was made once, bar the two cut off by the crash, made again.
    assert len(recorded) + len(after) == clean["calls"] == 50
