"""Evaluation: the comparison ensembles, the systems under test, the benchmarks.

`attention-moa eval` drives it; see docs/evaluation.md. The baselines are
LangGraph graphs with Attention-MoA's input, output and call metadata.
"""

from attention_moa_graph.evaluation.baselines import (
    create_moa,
    create_self_consistency,
    create_self_moa,
    create_single,
)
from attention_moa_graph.evaluation.systems import SystemSpec

__all__ = [
    "SystemSpec",
    "create_moa",
    "create_self_consistency",
    "create_self_moa",
    "create_single",
]
