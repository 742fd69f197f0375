"""The graph that `langgraph.json` serves as `attention_moa` (LangGraph Studio).

This is the only module that reads the environment (`langgraph dev` loads
`.env`): `ATTENTION_MOA_PROPOSERS` (comma-separated `provider:model` specs),
`ATTENTION_MOA_AGGREGATOR` and `ATTENTION_MOA_MAX_LAYERS`. Without them it uses
the offline demo models, so Studio opens with no keys. Models are resolved on
first use, so importing this module never needs a key either.
"""

from __future__ import annotations

import os

from attention_moa_graph._core.graph import create_attention_moa

_DEMO_PROPOSERS = "demo:alpha,demo:beta,demo:gamma"
_DEMO_AGGREGATOR = "demo:chair"


def _proposer_specs() -> list[str]:
    raw = os.environ.get("ATTENTION_MOA_PROPOSERS") or _DEMO_PROPOSERS
    return [spec.strip() for spec in raw.split(",") if spec.strip()]


graph = create_attention_moa(
    _proposer_specs(),
    aggregator=os.environ.get("ATTENTION_MOA_AGGREGATOR") or _DEMO_AGGREGATOR,
    max_layers=int(os.environ.get("ATTENTION_MOA_MAX_LAYERS") or 3),
    name="attention_moa",
)
