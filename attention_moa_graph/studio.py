"""Where Studio's graph used to live; `langgraph.json` points at `adapters` now."""

from attention_moa_graph.adapters.studio import graph

__all__ = ["graph"]
