"""Test doubles: a scripted chat model, the offline demo provider, a fake server.

Nothing in the package's production code imports this package. The `demo:`
provider reaches the model resolver through the `attention_moa_graph.providers`
entry point, and the fake OpenAI-compatible server is for tests and benchmarks.

Example:
    >>> from attention_moa_graph.testing import ScriptedChatModel
    >>> model = ScriptedChatModel(reply=lambda messages: "42")
    >>> model.invoke("What is six times seven?").content
    '42'
"""

from attention_moa_graph.testing.scripted import (
    ReplyFn,
    ScriptedCall,
    ScriptedChatModel,
    count_tokens,
)

__all__ = ["ReplyFn", "ScriptedCall", "ScriptedChatModel", "count_tokens"]
