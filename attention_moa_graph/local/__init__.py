"""Real language models on this machine: a llama.cpp server and a tiny model.

`attention-moa local install` puts the runtime in place; `"local:smollm2"`
model strings then work everywhere a model string does. See docs/local.md.
"""

from attention_moa_graph.local.provider import local_model
from attention_moa_graph.local.runtime import LocalRuntimeError, installed_runtime
from attention_moa_graph.local.server import stop_servers

__all__ = ["LocalRuntimeError", "installed_runtime", "local_model", "stop_servers"]
