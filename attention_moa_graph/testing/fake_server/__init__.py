"""A loopback OpenAI-compatible chat-completions server for tests and benchmarks.

It answers `POST /v1/chat/completions` (plain and streamed, with usage) with a
reply that is a pure function of the model name and the messages, after a
configurable latency, and can inject the faults real providers produce: rate
limits, server errors, hangs, non-JSON bodies, empty replies and dropped
connections, scripted per model or for a seeded fraction of requests. Every
request is logged. Real clients (`langchain-openai`, `openai`) talk to it.

Run it in its own process with `python -m attention_moa_graph.testing.fake_server`.

Example:
    >>> from attention_moa_graph.testing.fake_server import FakeOpenAIServer
    >>> with FakeOpenAIServer(latency=0.0) as server:
    ...     url = server.base_url  # "http://127.0.0.1:<port>/v1"
"""

from attention_moa_graph.testing.fake_server.process import (
    fetch_stats,
    main,
    server_process,
)
from attention_moa_graph.testing.fake_server.server import (
    FAULTS,
    TRANSIENT_FAULTS,
    FakeOpenAIServer,
    RequestRecord,
    default_reply,
    lognormal_latency,
)

__all__ = [
    "FAULTS",
    "TRANSIENT_FAULTS",
    "FakeOpenAIServer",
    "RequestRecord",
    "default_reply",
    "fetch_stats",
    "lognormal_latency",
    "main",
    "server_process",
]
