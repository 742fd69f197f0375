"""Checked by mypy (`make lint`), never run: the factory's options are typed.

Each line marked `type: ignore[...]` must be an error, and mypy's
`warn_unused_ignores` (part of `--strict`) fails the check if it is not.
`tests/unit_tests/test_options.py` also runs mypy on this file without the
marks and reads the errors.
"""

from __future__ import annotations

from attention_moa_graph import MoAContext, MoAOptionsDict, create_attention_moa

LINEUP = ["demo:alpha", "demo:beta"]

# Spelled right, with the right types: accepted.
create_attention_moa(LINEUP, aggregator="demo:chair", max_layers=2, temperature=0.2)
create_attention_moa(LINEUP, aggregator="demo:chair", role_max_tokens={"refine": 80})
keywords: MoAOptionsDict = {"critique_mode": "batched", "call_timeout": 30.0}
create_attention_moa(LINEUP, aggregator="demo:chair", **keywords)
MoAContext(max_layers=1, temperature=0.0)

# A misspelled option.
create_attention_moa(LINEUP, aggregator="demo:chair", max_layer=2)  # type: ignore[call-arg]
# A value of the wrong type, a choice that does not exist, a role that is none.
create_attention_moa(LINEUP, aggregator="demo:chair", max_layers="2")  # type: ignore[arg-type]
create_attention_moa(LINEUP, aggregator="demo:chair", critique_mode="all")  # type: ignore[arg-type]
create_attention_moa(LINEUP, aggregator="demo:chair", temperatures={"judge": 0.0})  # type: ignore[dict-item]
MoAContext(max_layer=1)  # type: ignore[call-arg]
