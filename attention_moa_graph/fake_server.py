"""Where the loopback fake server used to live; it is in `testing` now.

`python -m attention_moa_graph.fake_server` still starts it.
"""

from attention_moa_graph.testing.fake_server import (
    FAULTS,
    TRANSIENT_FAULTS,
    FakeOpenAIServer,
    RequestRecord,
    default_reply,
    fetch_stats,
    lognormal_latency,
    main,
    server_process,
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

if __name__ == "__main__":
    main()
