"""Building `llama-server` for this CPU, once per machine, from PyPI's sources.

The sources are the llama.cpp that `llama-cpp-python`'s source distribution
vendors; only the `llama-server` target is compiled, tuned to this CPU
(`GGML_NATIVE`), and kept in `~/.cache/attention-moa/` for every environment.
A build takes minutes, so it holds a lock on its cache directory: a second
install started meanwhile waits for it and takes its result instead of
building again into the same place, and both say what they are doing, with
the time elapsed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from attention_moa_graph.local.runtime import LocalRuntimeError, Runtime, cpu_flags

SOURCE = ("llama-cpp-python", "0.3.36")
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # it would download the web UI
    "-DLLAMA_OPENSSL=OFF",
)
PROGRESS_SECONDS = 30.0
"""How often a build says how far it has got."""

Say = Callable[[str], None]


def pip(*args: str) -> None:
    """Run pip in this environment; a failure is a `LocalRuntimeError`."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise LocalRuntimeError(f"pip {' '.join(args)} failed: {' '.join(detail)}")


def build_cache() -> Path:
    """Where a server built for this CPU is kept, shared by every environment.

    The build is tuned to the CPU (`GGML_NATIVE`), so the directory is named
    after the llama.cpp source and a digest of the CPU's instruction flags.
    """
    flags = hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:12]
    name, version = SOURCE
    return Path.home() / ".cache" / "attention-moa" / f"{name}-{version}-{flags}"


def elapsed(seconds: float) -> str:
    """`m:ss`."""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


@contextlib.contextmanager
def locked(path: Path, say: Say, waiting: str) -> Iterator[None]:
    """Hold an exclusive lock on `path` (across processes), saying so if we wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(waiting)
            started = time.monotonic()
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            say(f"the other install is done ({elapsed(time.monotonic() - started)})")
        yield
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def progress(say: Say, what: str, log: Path) -> Iterator[None]:
    """Say every `PROGRESS_SECONDS` how long `what` has run (and cmake's percent)."""
    started = time.monotonic()
    done = threading.Event()

    def report() -> None:
        while not done.wait(PROGRESS_SECONDS):
            percent = _last_percent(log)
            at = f", {percent}% of the steps" if percent is not None else ""
            say(f"{what}: {elapsed(time.monotonic() - started)} elapsed{at}")

    ticker = threading.Thread(target=report, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        say(f"{what}: done in {elapsed(time.monotonic() - started)}")


_PERCENT = re.compile(rb"\[\s*(\d{1,3})%\]")


def _last_percent(log: Path) -> int | None:
    try:
        with log.open("rb") as lines:
            lines.seek(max(0, log.stat().st_size - 4096))
            found = _PERCENT.findall(lines.read())
    except OSError:
        return None
    return int(found[-1]) if found else None


def compile_server(target: Path, say: Say) -> Path:
    """Download the sources, build `llama-server` into `target`; its path."""
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        raise LocalRuntimeError(
            f"building llama-server needs {' and '.join(missing)}; install them "
            "(Debian: apt-get install cmake g++) and run this again."
        )
    name, version = SOURCE
    log = target / "build.log"
    binary = target / "llama-server"
    say(
        f"building llama-server from the llama.cpp sources in {name} {version} "
        f"(about 5 minutes on 2 cores; log: {log})"
    )
    with tempfile.TemporaryDirectory(prefix="attention-moa-build-") as scratch:
        work = Path(scratch)
        pip("download", "--no-deps", "--no-binary", ":all:", "-d", scratch,
            f"{name}=={version}")  # fmt: skip
        (archive,) = work.glob("*.tar.gz")
        with tarfile.open(archive) as sources:
            if hasattr(tarfile, "data_filter"):
                sources.extractall(work, filter="data")
            else:  # pragma: no cover - Python releases before the filter
                sources.extractall(work)
        (tree,) = work.glob("*/vendor/llama.cpp")
        built = work / "build"
        steps = [
            ["cmake", "-S", str(tree), "-B", str(built), *CMAKE_OPTIONS],
            ["cmake", "--build", str(built), "--target", "llama-server",
             "-j", str(os.cpu_count() or 1)],
        ]  # fmt: skip
        with (
            log.open("w", encoding="utf-8") as output,
            progress(say, "building llama-server", log),
        ):
            for step in steps:
                done = subprocess.run(step, stdout=output, stderr=subprocess.STDOUT)
                if done.returncode != 0:
                    raise LocalRuntimeError(f"building llama-server failed; see {log}")
        # Copied under a temporary name and renamed: a half-copied binary is
        # never taken for a finished build.
        partial = target / "llama-server.partial"
        shutil.copy2(built / "bin" / "llama-server", partial)
        partial.replace(binary)
    return binary


def built_runtime(binary: Path, model: Path) -> Runtime:
    """The runtime of a server built here."""
    name, version = SOURCE
    return Runtime(
        server=str(binary),
        library_path="",
        source=f"llama-server built here from {name} {version}",
        model=str(model),
    )


def build_server(model: Path, say: Say) -> Runtime:
    """A `llama-server` built for this CPU: the cached one, or built now.

    Raises:
        LocalRuntimeError: If the build cannot run or fails; the message says
            why and where its log is.
    """
    target = build_cache()
    binary = target / "llama-server"
    with locked(
        target.with_suffix(".lock"),
        say,
        f"another install is building llama-server into {target}; waiting for it",
    ):
        if binary.is_file():
            say(f"using the llama-server built in {target}")
        else:
            target.mkdir(parents=True, exist_ok=True)
            compile_server(target, say)
    return built_runtime(binary, model)
