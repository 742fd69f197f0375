"""Where `astream_answer` used to live; it is in `adapters` now."""

from attention_moa_graph.adapters.streaming import StreamEvent, astream_answer

__all__ = ["StreamEvent", "astream_answer"]
