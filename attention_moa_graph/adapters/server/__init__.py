"""`attention-moa serve`: an OpenAI-compatible endpoint backed by the ensemble.

Needs the `serve` extra (`pip install 'attention-moa-graph[serve]'`): Starlette
and uvicorn.
"""

from attention_moa_graph.adapters.server._app import ChatCompletionsServer
from attention_moa_graph.adapters.server._http import ServeLimits

__all__ = ["ChatCompletionsServer", "ServeLimits"]
