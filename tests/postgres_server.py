"""A throwaway PostgreSQL server from Debian's packages (tests and benchmarks)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def initdb_path() -> str | None:
    """The newest installed `initdb`, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return found[-1] if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server on a free port; yield its DSN; stop and delete it after."""
    initdb = initdb_path()
    if initdb is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found (apt-get install postgresql)"
        )
    bin_dir = os.path.dirname(initdb)
    # Not under pytest's tmp dirs: those are private to root, and the server
    # runs as the postgres user.
    data = Path(tempfile.mkdtemp(prefix="moa-pgdata-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    subprocess.run(
        [*as_postgres, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*as_postgres, f"{bin_dir}/pg_ctl", "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-o", options, "-w", "-l", str(data / "server.log"), "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
