"""One local server per user and model file, shared by processes, gone when idle.

A stand-in `llama-server` (a few lines of Python that answer the health check
with the key from the environment) stands for the real one, so the sharing,
the lock, the key's path and the idle stop are tested in seconds; the real
model's tests are in `tests/local/`.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from attention_moa_graph.local.runtime import LocalRuntimeError, Runtime

STAND_IN = textwrap.dedent(
    f"""\
    #!{sys.executable}
    import http.server, os, sys
    port = int(sys.argv[sys.argv.index("--port") + 1])
    key = os.environ["LLAMA_API_KEY"]

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.headers.get("Authorization") == f"Bearer {{key}}"
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
    """
)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home of the test's own: its state directory, its servers."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ATTENTION_MOA_LOCAL_IDLE_SECONDS", "1")
    return tmp_path


@pytest.fixture
def runtime(home):
    binary = home / "llama-server"
    binary.write_text(STAND_IN)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    model = home / "model.gguf"
    model.write_bytes(b"")
    return Runtime(str(binary), "", "a stand-in", str(model))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


def wait_until(condition, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


LEASE = """
import json, sys
from pathlib import Path
from attention_moa_graph.local.runtime import Runtime
from attention_moa_graph.local.server import ServerSettings, shared_server
runtime = Runtime(**json.loads(sys.argv[1]))
lease = shared_server(runtime, Path(runtime.model), ServerSettings())
print(json.dumps({"pid": lease.server_pid, "slots": lease.slots}), flush=True)
"""


def take_lease(runtime: Runtime, then: str = "") -> subprocess.CompletedProcess[str]:
    """Take a lease on the server in another process, then run `then` there."""
    return subprocess.run(
        [sys.executable, "-c", LEASE + then, json.dumps(asdict(runtime))],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_processes_share_one_server_on_slots_of_their_own(runtime):
    from attention_moa_graph.local import server

    mine = server.shared_server(runtime, Path(runtime.model), server.ServerSettings())
    other = take_lease(runtime)
    assert other.returncode == 0, other.stderr
    theirs = json.loads(other.stdout)
    assert theirs["pid"] == mine.server_pid
    assert set(theirs["slots"]).isdisjoint(mine.slots)
    # One agent, one slot: the same one on every call.
    assert mine.slot_for("local:smollm2@1") == mine.slot_for("local:smollm2@1")
    assert mine.slot_for("local:smollm2@2") != mine.slot_for("local:smollm2@1")
    server.leave_servers()


def test_the_key_reaches_the_server_through_its_environment_only(runtime):
    from attention_moa_graph.local import server

    lease = server.shared_server(runtime, Path(runtime.model), server.ServerSettings())
    assert server.healthy(lease.port, lease.api_key)
    assert not server.healthy(lease.port, "a-wrong-key")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            assert lease.api_key.encode() not in command, entry.name
    state = lease.files.state
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    server.leave_servers()


def test_the_server_stops_once_its_last_user_is_gone(runtime):
    from attention_moa_graph.local import server

    lease = server.shared_server(runtime, Path(runtime.model), server.ServerSettings())
    killed = take_lease(runtime, then="import os, signal; os.kill(os.getpid(), 9)")
    assert killed.returncode == -signal.SIGKILL
    # This process still holds its lease: the server stays.
    time.sleep(2.5)
    assert alive(lease.server_pid) and lease.files.state.exists()
    server.leave_servers()
    assert wait_until(lambda: not alive(lease.server_pid))
    assert wait_until(lambda: not alive(lease.keeper_pid))
    assert not lease.files.state.exists()
    # The next user starts a new one.
    again = server.shared_server(runtime, Path(runtime.model), server.ServerSettings())
    assert again.server_pid != lease.server_pid and alive(again.server_pid)
    server.stop_server(again)
    assert wait_until(lambda: not alive(again.server_pid))


def test_processes_starting_at_once_start_one_server(runtime):
    argument = json.dumps(asdict(runtime))
    started = [
        subprocess.Popen(
            [sys.executable, "-c", LEASE, argument],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=60) for process in started]
    assert all(p.returncode == 0 for p in started), outputs
    (pid,) = {json.loads(out)["pid"] for out, _ in outputs}
    # All three have ended: the server stops after its idle second.
    assert wait_until(lambda: not alive(pid))


def test_a_server_built_for_another_cpu_is_reported_as_such(home):
    from attention_moa_graph.local import server

    # A stand-in binary that dies as a build for another CPU does: SIGILL.
    binary = home / "llama-server"
    binary.write_text("#!/bin/sh\nkill -ILL $$\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    model = home / "model.gguf"
    model.write_bytes(b"")
    runtime = Runtime(str(binary), "", "a test binary", str(model))
    with pytest.raises(LocalRuntimeError, match="illegal instruction.*--build"):
        server.shared_server(runtime, model, server.ServerSettings())
