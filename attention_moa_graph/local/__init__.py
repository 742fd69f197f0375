"""Real language models on this machine: a llama.cpp server and a tiny model.

`attention-moa local install` sets the runtime up; `"local:smollm2"` model
strings then run on it (see `provider`), every process of a user sharing one
server per model file (see `server`).
"""

from attention_moa_graph.local.provider import local_model
from attention_moa_graph.local.runtime import LocalRuntimeError, installed_runtime
from attention_moa_graph.local.server import leave_servers

__all__ = ["LocalRuntimeError", "installed_runtime", "leave_servers", "local_model"]
