"""Finding benchmark files under a user's directory, reading them, checking digests.

The package ships no benchmark data: the user points at a copy of the
official files. A directory may be laid out like the upstream repository or
flattened; each benchmark lists the places a file may sit.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from attention_moa_graph._calls.errors import MoAError


class BenchmarkDataError(MoAError, ValueError):
    """A benchmark file is missing, malformed, or not the expected version."""


def find_file(root: Path, candidates: Sequence[str], what: str, hint: str) -> Path:
    """The first of `candidates` (paths relative to `root`) that exists.

    Raises:
        BenchmarkDataError: If none does; the message lists where it looked.
    """
    if root.is_file():
        return root
    if not root.is_dir():
        raise BenchmarkDataError(f"{what}: {root} is not a directory. {hint}")
    for candidate in candidates:
        path = root / candidate
        if path.is_file():
            return path
    looked = ", ".join(candidates)
    raise BenchmarkDataError(
        f"{what} not found under {root} (looked for {looked}). {hint}"
    )


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file, naming the file when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchmarkDataError(f"{what}: cannot read {path} as JSON: {exc}") from exc


def read_jsonl(path: Path, what: str) -> list[dict[str, Any]]:
    """Parse a JSON Lines file (blank lines skipped), naming the bad line."""
    records: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchmarkDataError(f"{what}: cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkDataError(
                f"{what}: line {number} of {path} is not JSON: {exc}"
            ) from exc
        if not isinstance(record, dict):
            raise BenchmarkDataError(
                f"{what}: line {number} of {path} is not a JSON object"
            )
        records.append(record)
    return records


def finite(payload: Any) -> Any:
    """`payload` with NaN and infinities as None: JSON has no such numbers.

    Example:
        >>> finite({"score": float("nan"), "by": [1.5, float("inf")]})
        {'score': None, 'by': [1.5, None]}
    """
    if isinstance(payload, float):
        return payload if math.isfinite(payload) else None
    if isinstance(payload, dict):
        return {key: finite(value) for key, value in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [finite(value) for value in payload]
    return payload


def dumps(payload: Any, **options: Any) -> str:
    """Strict JSON of `payload`, non-finite numbers written as null."""
    return json.dumps(finite(payload), ensure_ascii=False, allow_nan=False, **options)


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Write records as JSON Lines (UTF-8, one object per line), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(dumps(record) + "\n")
    partial.replace(path)


def write_json(path: Path, payload: Any) -> None:
    """Write indented JSON atomically, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(dumps(payload, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def sha256_of(path: Path) -> str:
    """Hex sha256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_digest(path: Path, expected: str, what: str, hint: str) -> None:
    """Refuse a file whose bytes differ from the pinned upstream version.

    Raises:
        BenchmarkDataError: If the digest differs.
    """
    actual = sha256_of(path)
    if actual != expected:
        raise BenchmarkDataError(
            f"{what}: {path} has sha256 {actual}, expected {expected} (the pinned "
            f"upstream version). {hint}"
        )
