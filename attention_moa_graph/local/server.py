"""One `llama-server` process per Python process, shared by every local agent.

It starts on first use, on a free 127.0.0.1 port with a random API key, logs
to a file (never to the terminal or the answer), and stops at exit. A small
supervisor process (see `supervise`) stops it too if this process dies
without cleaning up, so no server is ever left behind.
"""

from __future__ import annotations

import atexit
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from attention_moa_graph.local.runtime import (
    INSTALL_COMMAND,
    LocalRuntimeError,
    Runtime,
)

START_TIMEOUT = 60.0
"""Seconds a server may take to load its model and answer its health check."""


@dataclass(frozen=True)
class ServerSettings:
    """How the shared server is started.

    The defaults suit a 135M-parameter model on a small CPU: enough parallel
    slots for a stage of a few agents (more requests queue), room for an
    Attention-MoA prompt in each, and a server-side cap on any one reply.
    """

    slots: int = 8
    context_per_slot: int = 4096
    threads: int = max(1, min(4, os.cpu_count() or 1))
    max_reply_tokens: int = 1024
    """The server's own cap (`-n`); the call policy's `max_tokens` is usually lower."""


class LlamaServer:
    """A running `llama-server`; `base_url` and `api_key` are what clients need."""

    def __init__(self, runtime: Runtime, model: Path, settings: ServerSettings):
        """Prepare, without starting."""
        self.runtime, self.model, self.settings = runtime, model, settings
        self.api_key = secrets.token_hex(16)
        self.log_path = (
            Path(tempfile.gettempdir()) / f"attention-moa-llama-{os.getpid()}.log"
        )
        self.port = 0
        self.pid: int | None = None
        self._supervisor: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        """Start the server and wait until it answers.

        Raises:
            LocalRuntimeError: If it exits or does not answer in time; the
                message gives the cause and the log file.
        """
        self.port = _free_port()
        s = self.settings
        command = [
            self.runtime.server,
            "-m", str(self.model),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--api-key", self.api_key,
            "-np", str(s.slots),
            "-c", str(s.slots * s.context_per_slot),
            "-t", str(s.threads),
            "-n", str(s.max_reply_tokens),
            "-a", self.model.stem,
        ]  # fmt: skip
        environment = dict(os.environ)
        if self.runtime.library_path:
            existing = environment.get("LD_LIBRARY_PATH", "")
            environment["LD_LIBRARY_PATH"] = os.pathsep.join(
                [self.runtime.library_path, *([existing] if existing else [])]
            )
        self._supervisor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "attention_moa_graph.local.supervise",
                str(self.log_path),
                "--",
                *command,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            start_new_session=True,  # Ctrl-C goes to this process, which stops it
        )
        assert self._supervisor.stdout is not None
        line = self._supervisor.stdout.readline().strip()
        self.pid = int(line) if line.isdigit() else None
        self._wait_until_healthy()
        return self

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/health",
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        while time.monotonic() < deadline:
            assert self._supervisor is not None
            code = self._supervisor.poll()
            if code is not None:
                raise LocalRuntimeError(self._exit_reason(code))
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise LocalRuntimeError(
            f"llama-server did not answer within {START_TIMEOUT:g} s; its log is "
            f"{self.log_path}."
        )

    def _exit_reason(self, code: int) -> str:
        signalled = code - 128 if code > 128 else None
        if signalled == signal.SIGILL:
            return (
                f"llama-server ({self.runtime.source}) stopped with an illegal "
                "instruction: it was built for a CPU with instructions this one "
                f"lacks. Run `{INSTALL_COMMAND} --build` to build it for this "
                "machine (needs cmake and a C++ compiler)."
            )
        return (
            f"llama-server ({self.runtime.source}) exited with status {code} while "
            f"starting; its log is {self.log_path}."
        )

    def stop(self) -> None:
        """Stop the server (closing the supervisor's stdin makes it stop)."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is None:
            return
        if supervisor.stdin is not None:
            supervisor.stdin.close()
        try:
            supervisor.wait(timeout=10)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            supervisor.wait()
        if supervisor.stdout is not None:
            supervisor.stdout.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_LOCK = threading.Lock()
_SERVERS: dict[tuple[str, str, ServerSettings], LlamaServer] = {}


def shared_server(
    runtime: Runtime, model: Path, settings: ServerSettings
) -> LlamaServer:
    """The process's server for this model, started on first use."""
    key = (runtime.server, str(model), settings)
    with _LOCK:
        server = _SERVERS.get(key)
        if server is None:
            server = _SERVERS[key] = LlamaServer(runtime, model, settings).start()
        return server


def stop_servers() -> None:
    """Stop every server this process started (also run at exit)."""
    with _LOCK:
        servers = list(_SERVERS.values())
        _SERVERS.clear()
    for server in servers:
        server.stop()


atexit.register(stop_servers)


def _forget_in_child() -> None:  # pragma: no cover - runs in a forked child
    """A forked child does not own its parent's servers: never stop them."""
    _SERVERS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
