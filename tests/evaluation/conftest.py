"""Paths to the benchmark data beside the repository (tests only)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"


@pytest.fixture(scope="session")
def benchmarks() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"benchmark data expected at {SHARED} (shared/ beside the clone)")
    return SHARED


@pytest.fixture(scope="session")
def alpaca_data(benchmarks: Path) -> Path:
    return benchmarks / "alpaca_eval"


@pytest.fixture(scope="session")
def mt_bench_data(benchmarks: Path) -> Path:
    return benchmarks / "mt_bench"
