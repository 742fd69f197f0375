"""`attention-moa serve`: an OpenAI-compatible endpoint backed by the ensemble.

`ChatCompletionsServer` needs the `serve` extra (Starlette and uvicorn):
`pip install 'attention-moa-graph[serve]'`. `ServeLimits` needs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attention_moa_graph.adapters.server._limits import ServeLimits

if TYPE_CHECKING:
    from attention_moa_graph.adapters.server._app import ChatCompletionsServer

__all__ = ["ChatCompletionsServer", "ServeLimits"]


def __getattr__(name: str) -> Any:
    if name != "ChatCompletionsServer":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from attention_moa_graph._extras import require

    require("serve", "starlette", "uvicorn")
    from attention_moa_graph.adapters.server._app import ChatCompletionsServer

    return ChatCompletionsServer
