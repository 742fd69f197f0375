"""The HTTP transport of the OpenAI-protocol models the package builds.

`async_http_client()` gives a `ChatOpenAI` of your own the same transport
(the OpenAI SDK on aiohttp, one pool per event loop), so that a sync
`graph.invoke` calls it on the package's loop instead of a thread per call.
Needs the `openai` extra.

Example (with the `openai` extra):
    >>> from langchain_openai import ChatOpenAI
    >>> from attention_moa_graph.transport import async_http_client
    >>> model = ChatOpenAI(
    ...     model="gpt-4.1-mini", api_key="sk-x", http_async_client=async_http_client()
    ... )
"""

from attention_moa_graph._calls.transport import async_http_client

async_http_client.__module__ = __name__

__all__ = ["async_http_client"]
