"""The HTTP transport of the OpenAI-protocol models the package builds.

The OpenAI SDK's default async transport (httpx over httpcore) spends 2-4 ms
of CPU per request; at N=8 a critique stage sends 64 requests, so the stage
waits on the client, not the model. The SDK's aiohttp transport
(`openai[aiohttp]`) halves that. An aiohttp session belongs to the event loop
that opened it, so `async_http_client()` keeps one per loop: the models hold
one process-wide client object whose `send` goes to the pool of the loop it
runs on. Each pool is closed when its loop shuts down (`asyncio.run`,
`asyncio.Runner` and anyio close async generators then), so none is left for
aiohttp to warn about.

A pool's connection limit is the SDK's own for aiohttp, 1000: the widest stage
the package allows (16 agents, 256 critiques) fits in it with room for three
more such queries on the same loop before calls wait for a connection.

aiohttp reports a connection the server closed (or refused) as a timeout;
here it is reported as what it is (`ConnectionDroppedError`), and stays
retryable.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any


class _Pool:
    """One event loop's aiohttp-backed client, closed when the loop shuts down."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: Any) -> None:
        self.loop = loop
        self.client = client
        self.closer = self._close_at_shutdown()

    async def _close_at_shutdown(self) -> AsyncIterator[None]:
        # Started once and left suspended: the loop finalizes its async
        # generators at shutdown, which runs this `finally`.
        try:
            yield
        finally:
            with _lock:  # the clients hold the loop: let both go
                _pools.pop(self.loop, None)
            await self.client.aclose()


_lock = threading.Lock()
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = (
    weakref.WeakKeyDictionary()
)


async def _pool() -> _Pool:
    """The running loop's pool, opened on first use."""
    import openai

    loop = asyncio.get_running_loop()
    with _lock:
        pool = _pools.get(loop)
    if pool is not None:
        return pool
    pool = _Pool(loop, openai.DefaultAioHttpClient())
    await pool.closer.__anext__()  # registers it with the loop
    with _lock:
        _pools[loop] = pool
    return pool


@functools.cache
def _client_class() -> type[Any]:
    """The class of the process-wide client that dispatches to the loops' pools.

    An `openai.DefaultAsyncHttpxClient` (so the SDK's own types, timeouts and
    redirect rules) that builds requests and hands each to the running loop's
    aiohttp client.
    """
    import aiohttp
    import openai

    base = openai.DefaultAsyncHttpxClient
    # httpx or httpx2, whichever this SDK is built on.
    http = importlib.import_module(base.__mro__[1].__module__.partition(".")[0])

    class ConnectionDroppedError(http.ConnectError):  # type: ignore[misc, name-defined]
        """The server closed or refused the connection before a whole reply.

        The SDK reports it as a connection error (and retries it), where
        aiohttp's own mapping said "timed out".
        """

    class LoopSharedClient(base):  # type: ignore[misc, valid-type]
        async def send(self, request: Any, **kwargs: Any) -> Any:
            pool = await _pool()
            try:
                return await pool.client.send(request, **kwargs)
            except http.TimeoutException as error:
                cause = error.__cause__
                if not isinstance(cause, aiohttp.ClientConnectionError) or isinstance(
                    cause, TimeoutError
                ):
                    raise
                raise ConnectionDroppedError(
                    "the server dropped or refused the connection before a "
                    f"complete reply ({type(cause).__name__}: {cause})",
                    request=request,
                ) from cause

        async def aclose(self) -> None:
            """Shared by every model: the pools close with their loops."""

    LoopSharedClient.__qualname__ = LoopSharedClient.__name__
    return LoopSharedClient


@functools.cache
def async_http_client() -> Any | None:
    """The async HTTP client of the OpenAI-protocol models the package builds.

    aiohttp transport, one connection pool per event loop, each closed when
    its loop shuts down.

    Give it to your own models for the transport the package's models use:
    `ChatOpenAI(..., http_async_client=async_http_client())`. Returns None
    (the SDK's default transport) when aiohttp is not installed
    (`pip install 'openai[aiohttp]'`).
    """
    try:
        import aiohttp  # noqa: F401
        import openai

        openai.DefaultAioHttpClient()  # raises if the SDK lacks its aiohttp extra
    except (ImportError, RuntimeError):
        return None
    return _client_class()()
