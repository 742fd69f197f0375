"""Where the shared servers are described, and how processes agree on them.

One directory per user (`~/.cache/attention-moa/servers/`, owner-only); for
each server, named by a digest of its binary and model file: a state file
(port, key, pids, settings), a lock that every process and the server's
keeper take to read or change it, one entry per process that holds a lease,
and the server's log.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from attention_moa_graph.local.runtime import Runtime


def state_dir() -> Path:
    """This user's directory of shared-server state (owner-only)."""
    path = Path.home() / ".cache" / "attention-moa" / "servers"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@dataclass(frozen=True)
class ServerFiles:
    """Where one shared server is described: its state, lock, users and log."""

    base: Path

    @classmethod
    def of(cls, runtime: Runtime, model: Path) -> ServerFiles:
        """The files of the server for this binary and model file."""
        identity = f"{Path(runtime.server).resolve()}\0{model.resolve()}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
        return cls(state_dir() / digest)

    @property
    def state(self) -> Path:
        """The state file: port, key, pids, model, settings (owner-only)."""
        return self.base.with_suffix(".json")

    @property
    def lock(self) -> Path:
        """The lock every user and the keeper take to read or change the state."""
        return self.base.with_suffix(".lock")

    @property
    def users(self) -> Path:
        """One entry per process holding a lease: `<pid>-<start>`, its seat."""
        return self.base.with_suffix(".users")

    @property
    def log(self) -> Path:
        """The server's output."""
        return self.base.with_suffix(".log")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the server's lock (across processes) for the block."""
        descriptor = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # releases the lock

    def read_state(self) -> dict[str, object] | None:
        """The state, or None if there is none (or it is unreadable)."""
        try:
            data = json.loads(self.state.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_state(self, state: dict[str, object]) -> None:
        """Replace the state at once (never half-written), readable by its owner."""
        partial = self.state.with_suffix(".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(state, out)
        partial.replace(self.state)

    def live_users(self) -> dict[int, int]:
        """Pid -> seat of each process that holds a lease and still runs."""
        found: dict[int, int] = {}
        try:
            entries = list(self.users.iterdir())
        except OSError:
            return found
        for entry in entries:
            pid, _, started = entry.name.partition("-")
            if pid.isdigit() and process_start(int(pid)) == started:
                with contextlib.suppress(OSError, ValueError):
                    found[int(pid)] = int(entry.read_text(encoding="utf-8") or 0)
            else:
                entry.unlink(missing_ok=True)  # its process has ended
        return found


def process_start(pid: int) -> str:
    """A token that tells a process from a later one with the same pid ('' if none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return ""
        except PermissionError:
            pass
        return "0"  # no /proc: the pid alone
    return fields[19] if len(fields) > 19 else "0"


def end_process(child: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop `child` if it still runs: SIGTERM, then SIGKILL after `grace` seconds."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
