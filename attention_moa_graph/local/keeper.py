"""Keep a shared `llama-server` for as long as some process uses it.

`python -m attention_moa_graph.local.keeper --base BASE --idle SECONDS -- COMMAND...`
starts COMMAND (the server) with its output in `BASE.log`, prints its pid, and
then watches the server's users (`BASE.users/`, one entry per process that
holds a lease): once none has been left for SECONDS, it removes the state file
and stops the server, under the same lock the users take, so that no process
takes a lease on a server that is stopping. It also stops the server when it
is told to (SIGTERM, SIGINT, SIGHUP) and, on Linux, the server dies with it.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from attention_moa_graph.local.registry import ServerFiles, end_process
from attention_moa_graph.local.server import START_TIMEOUT

POLL_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass  # not Linux: the keeper still stops it on its way out


def _forget(files: ServerFiles) -> None:
    """Remove the state file if it still describes this keeper's server."""
    state = files.read_state()
    if state is not None and state.get("keeper_pid") == os.getpid():
        files.state.unlink(missing_ok=True)


def keep(files: ServerFiles, idle: float, command: Sequence[str]) -> int:
    """Run the server until it has had no user for `idle` seconds; its exit status."""
    descriptor = os.open(files.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "ab") as output:
        child = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    print(child.pid, flush=True)  # noqa: T201 - the starting process reads it
    sys.stdout.close()

    def told_to_stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, told_to_stop)
    idle_since: float | None = None
    started = time.monotonic()
    try:
        while child.poll() is None:
            time.sleep(POLL_SECONDS)
            # Until the starting process has written the state, it has no users
            # yet: the idle time counts from then (unless it never comes).
            if files.read_state() is None:
                if time.monotonic() - started > 2 * START_TIMEOUT:
                    break
                continue
            if files.live_users():
                idle_since = None
                continue
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since < idle:
                continue
            with files.locked():
                if not files.live_users():  # none took a lease meanwhile
                    _forget(files)
                    break
                idle_since = None
    finally:
        # The starting process holds the lock until the server answers: a
        # server that died before then has no state to forget.
        if files.read_state() is not None:
            with files.locked():
                _forget(files)
        end_process(child)
    code = child.returncode
    return code if code >= 0 else 128 - code


def main(argv: Sequence[str] | None = None) -> int:
    """The keeper's command line; returns the server's exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, type=Path)
    parser.add_argument("--idle", required=True, type=float)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return keep(ServerFiles(args.base), args.idle, command)


if __name__ == "__main__":
    sys.exit(main())
