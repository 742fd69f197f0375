"""Run a server process for as long as the parent that started this one lives.

`python -m attention_moa_graph.local.supervise LOG -- COMMAND...` starts
COMMAND with its output in LOG, prints its pid, and stops it when its own
stdin closes: the parent holds the other end of that pipe, so however the
parent ends (normally, Ctrl-C, SIGKILL), the server ends with it. On Linux
the server is also told to die with this supervisor.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass  # not Linux: the stdin pipe still ends the server


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()


def main(argv: Sequence[str] | None = None) -> int:
    """Supervise the command; returns its exit status (128 + signal if killed)."""
    args = list(sys.argv[1:] if argv is None else argv)
    log, command = args[0], args[2:] if args[1:2] == ["--"] else args[1:]
    with open(log, "ab") as output:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    print(child.pid, flush=True)  # noqa: T201 - the parent reads this line

    def parent_gone() -> None:
        # The raw descriptor, not sys.stdin: a daemon thread blocked in a
        # buffered read aborts the interpreter at exit.
        while os.read(0, 4096):  # returns b"" at EOF: the parent closed or died
            pass
        _stop(child)

    threading.Thread(target=parent_gone, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: _stop(child))
    signal.signal(signal.SIGINT, lambda *_: _stop(child))
    code = child.wait()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
