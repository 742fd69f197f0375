"""Shared pieces of the benchmark scripts: machine description and RESULTS.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    """One line describing where the figures were taken."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return (
        f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, "
        f"commit {commit}"
    )


def record(title: str, command: str, table: str) -> None:
    """Print a result table and append it, dated, to RESULTS.md.

    `command` is completed with the arguments the script was given.
    """
    import sys

    extra = " ".join(sys.argv[1:])
    if extra and extra not in command:
        command = f"{command} {extra}"
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"\n## {title} ({stamp})\n\nMachine: {machine()}\n\n"
        f"Command: `{command}`\n\n{table}\n"
    )
    print(block)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nAppended by the scripts in `benchmarks/` "
            "(`make bench`); newest last.\n"
        )
    with RESULTS.open("a") as out:
        out.write(block)
