"""Where the comparison ensembles used to live; they are in `evaluation` now."""

from attention_moa_graph.evaluation.baselines import (
    create_moa,
    create_self_moa,
    create_single,
)

__all__ = ["create_moa", "create_self_moa", "create_single"]
