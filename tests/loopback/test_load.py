"""Load: concurrent queries, 10% faulty calls, every answer as if nothing failed.

Scaled down for the suite; the full 200-query run is `python -m benchmarks.load`.
"""

from __future__ import annotations

import pytest

from benchmarks.load import run_load

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_concurrent_queries_with_faults_all_complete_with_clean_answers(capsys):
    report = await run_load(queries=40, cap=20, fault_rate=0.1, seed=3)
    with capsys.disabled():
        print(f"\nload: {report.line()}")
    assert report.completed == report.matching == 40
    assert report.requests >= 40 * 33
    assert 0.06 * report.requests <= report.faults <= 0.14 * report.requests
