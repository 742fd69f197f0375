"""One `llama-server` per user and model file, shared by every process of that user.

A process that needs a model takes a lease on its server: under a file lock
it reads the server's state file (port, key, pids), checks that the server
answers, and adds itself to the server's users; the first process finds no
state and starts the server. The server runs under a keeper (see `keeper`),
a small detached process that stops it once its last user has gone (ended,
or killed) and `idle_seconds` have passed with none. So a demo, a test and a
second terminal share one server and its cores instead of starting one each.

The key reaches the server through its environment, never its command line
(which `ps` shows to every user of the machine); the state file that holds it
is readable by its owner only. Each lease gets its own slots of the server,
so the calls of one process's agents keep their cached prompts (see
`Lease.slot_for`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from attention_moa_graph.local.registry import ServerFiles, process_start
from attention_moa_graph.local.runtime import (
    INSTALL_COMMAND,
    LocalRuntimeError,
    Runtime,
)

START_TIMEOUT = 60.0
"""Seconds a server may take to load its model and answer its health check."""

IDLE_SECONDS_VARIABLE = "ATTENTION_MOA_LOCAL_IDLE_SECONDS"
"""Overrides `ServerSettings.idle_seconds` for the servers this process starts."""


@dataclass(frozen=True)
class ServerSettings:
    """How a shared server is sized; fixed by the process that starts it.

    The defaults suit a 135M-parameter model on a small CPU: every core (one
    server serves every process), one slot per agent of a default lineup for
    two processes at once, room for an Attention-MoA prompt in each, and a
    server-side cap on any one reply.
    """

    slots: int = 8
    slots_per_user: int = 4
    """Slots each lease keeps its agents' calls on: a proposer lineup of three
    and its aggregator."""
    context_per_slot: int = 4096
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_reply_tokens: int = 1024
    """The server's own cap (`-n`); the sampling's `max_tokens` is usually lower."""
    idle_seconds: float = 60.0
    """How long the server outlives its last user."""


def server_command(
    runtime: Runtime, model: Path, settings: ServerSettings, port: int
) -> list[str]:
    """The `llama-server` command line: no secret in it."""
    s = settings
    return [
        runtime.server,
        "-m", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "-np", str(s.slots),
        "-c", str(s.slots * s.context_per_slot),
        "-t", str(s.threads),
        "-n", str(s.max_reply_tokens),
        "-a", model.stem,
        "--metrics",
    ]  # fmt: skip


def server_environment(runtime: Runtime, api_key: str) -> dict[str, str]:
    """The server's environment: the key (llama-server reads `LLAMA_API_KEY`)."""
    environment = dict(os.environ)
    environment["LLAMA_API_KEY"] = api_key
    if runtime.library_path:
        existing = environment.get("LD_LIBRARY_PATH", "")
        environment["LD_LIBRARY_PATH"] = os.pathsep.join(
            [runtime.library_path, *([existing] if existing else [])]
        )
    return environment


def exit_reason(runtime: Runtime, code: int, log: Path) -> str:
    """Why a server that exited while starting did, for the user."""
    signalled = code - 128 if code > 128 else -code if code < 0 else None
    if signalled == signal.SIGILL:
        return (
            f"llama-server ({runtime.source}) stopped with an illegal instruction: "
            "it was built for a CPU with instructions this one lacks. Run "
            f"`{INSTALL_COMMAND} --build` to build it for this machine (needs "
            "cmake and a C++ compiler)."
        )
    return (
        f"llama-server ({runtime.source}) exited with status {code} while "
        f"starting; its log is {log}."
    )


def healthy(port: int, api_key: str, timeout: float = 2.0) -> bool:
    """Whether the server on `port` answers its health check with this key."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/health",
        headers={"Authorization": f"Bearer {api_key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class Lease:
    """This process's use of a shared server: where it is and which slots are ours."""

    port: int
    api_key: str = field(repr=False)
    server_pid: int
    keeper_pid: int
    slots: tuple[int, ...]
    files: ServerFiles
    _assigned: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint."""
        return f"http://127.0.0.1:{self.port}/v1"

    def slot_for(self, agent: str) -> int:
        """The server slot that `agent`'s calls keep to, so its prompts stay cached.

        Agents get this lease's slots in the order they first ask, and share
        them round-robin when there are more agents than slots.
        """
        with _LOCK:
            if agent not in self._assigned:
                self._assigned[agent] = self.slots[
                    len(self._assigned) % len(self.slots)
                ]
            return self._assigned[agent]


_LOCK = threading.Lock()
_LEASES: dict[Path, Lease] = {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _idle_seconds(settings: ServerSettings) -> float:
    value = os.environ.get(IDLE_SECONDS_VARIABLE)
    try:
        return float(value) if value else settings.idle_seconds
    except ValueError:
        return settings.idle_seconds


def _running(files: ServerFiles) -> dict[str, object] | None:
    """The server's state if it runs and answers; else None (stale state removed)."""
    state = files.read_state()
    if state is None:
        return None
    keeper = int(str(state.get("keeper_pid", 0)))
    if process_start(keeper) == str(state.get("keeper_start")) and healthy(
        int(str(state["port"])), str(state["api_key"])
    ):
        return state
    files.state.unlink(missing_ok=True)
    return None


def _start(
    files: ServerFiles, runtime: Runtime, model: Path, settings: ServerSettings
) -> dict[str, object]:
    """Start the server under its keeper and wait until it answers."""
    port, api_key = _free_port(), secrets.token_hex(16)
    files.users.mkdir(mode=0o700, exist_ok=True)
    keeper = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "attention_moa_graph.local.keeper",
            "--base",
            str(files.base),
            "--idle",
            str(_idle_seconds(settings)),
            "--",
            *server_command(runtime, model, settings, port),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=server_environment(runtime, api_key),
        start_new_session=True,  # outlives this process; Ctrl-C here spares it
    )
    assert keeper.stdout is not None
    line = keeper.stdout.readline().strip()
    keeper.stdout.close()
    server_pid = int(line) if line.isdigit() else 0
    deadline = time.monotonic() + START_TIMEOUT
    while not healthy(port, api_key):
        code = keeper.poll()
        if code is not None:
            raise LocalRuntimeError(exit_reason(runtime, code, files.log))
        if time.monotonic() > deadline:
            keeper.terminate()
            raise LocalRuntimeError(
                f"llama-server did not answer within {START_TIMEOUT:g} s; its log "
                f"is {files.log}."
            )
        time.sleep(0.1)
    state: dict[str, object] = {
        "port": port,
        "api_key": api_key,
        "server_pid": server_pid,
        "keeper_pid": keeper.pid,
        "keeper_start": process_start(keeper.pid),
        "model": str(model),
        "server": runtime.server,
        "settings": asdict(settings),
    }
    files.write_state(state)
    return state


def shared_server(runtime: Runtime, model: Path, settings: ServerSettings) -> Lease:
    """This process's lease on the user's server for `model`, started if needed.

    Raises:
        LocalRuntimeError: If the server cannot start or answer; the message
            gives the cause and the log file.
    """
    files = ServerFiles.of(runtime, model)
    with _LOCK:
        lease = _LEASES.get(files.base)
        if lease is not None and healthy(lease.port, lease.api_key):
            return lease
    with files.locked():
        state = _running(files) or _start(files, runtime, model, settings)
        users = files.live_users()
        seats = set(users.values())
        seat = next(i for i in range(len(users) + 1) if i not in seats)
        files.users.mkdir(mode=0o700, exist_ok=True)
        mine = files.users / f"{os.getpid()}-{process_start(os.getpid())}"
        mine.write_text(str(seat), encoding="utf-8")
    size = state.get("settings")
    size = size if isinstance(size, dict) else {}
    slots, per_user = int(size.get("slots", 1)), int(size.get("slots_per_user", 1))
    first = (seat * per_user) % max(slots, 1)
    lease = Lease(
        port=int(str(state["port"])),
        api_key=str(state["api_key"]),
        server_pid=int(str(state["server_pid"])),
        keeper_pid=int(str(state["keeper_pid"])),
        slots=tuple((first + i) % slots for i in range(min(per_user, slots))),
        files=files,
    )
    with _LOCK:
        _LEASES[files.base] = lease
    return lease


def leave_servers() -> None:
    """End this process's leases (also run at exit).

    Each server stops once its last user has left and its idle time passed.
    """
    with _LOCK:
        leases = list(_LEASES.values())
        _LEASES.clear()
    for lease in leases:
        entry = lease.files.users / f"{os.getpid()}-{process_start(os.getpid())}"
        entry.unlink(missing_ok=True)


def stop_server(lease: Lease) -> None:
    """Stop a shared server now, whoever else uses it (tests, `local stop`)."""
    with lease.files.locked():
        lease.files.state.unlink(missing_ok=True)
        with contextlib.suppress(ProcessLookupError):
            os.kill(lease.keeper_pid, signal.SIGTERM)
    with _LOCK:
        _LEASES.pop(lease.files.base, None)


atexit.register(leave_servers)


def _forget_in_child() -> None:  # pragma: no cover - runs in a forked child
    """A forked child holds no lease of its parent's: it takes its own."""
    _LEASES.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
