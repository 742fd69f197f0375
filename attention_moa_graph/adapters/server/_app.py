"""An OpenAI-compatible `/v1/chat/completions` endpoint backed by the ensemble.

Any OpenAI client can then use Attention-MoA as if it were one model: plain
and streamed completions, with usage. Requests are stateless (send the whole
conversation each time, as with OpenAI).

The server is a Starlette app under uvicorn, running on the package's own
event loop, so its runs share the call cap and thread pool of every other
run in the process. What it lets clients do is set by `ServeLimits`: a key,
the hosts it answers to, body size, time to send a request, runs at once. A
client that goes away cancels its run: no model call starts after that.
Failures of the ensemble's models reach clients as a 502 with a request id
only; the detail, cleared of keys, goes to the `attention_moa_graph.serve`
logger.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import uvicorn
from langchain_core.messages import convert_to_messages
from langgraph.graph.state import CompiledStateGraph
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from attention_moa_graph._calls.loop import start_on_loop
from attention_moa_graph.adapters.server import _openai_api as api
from attention_moa_graph.adapters.server._completion import Run, error_response
from attention_moa_graph.adapters.server._http import (
    bind,
    check_headers,
    check_json,
    head_deadline_protocol,
    read_body,
)
from attention_moa_graph.adapters.server._limits import ServeLimits

log = logging.getLogger("attention_moa_graph.serve")
T = TypeVar("T")


class _ClientGone(Exception):
    """The client closed the connection before its answer was complete."""


async def _disconnected(receive: Receive) -> None:
    """Returns when the client has gone (its body already read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _unless_disconnected(work: Awaitable[T], receive: Receive) -> T:
    """`work`'s result; cancels it and raises `_ClientGone` if the client goes."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            # The run's own cancellation finishes before its slot is freed.
            await asyncio.wait({task})
    if task.cancelled():
        raise _ClientGone
    return task.result()


class _EventStream(Response):
    """A server-sent event stream that is cancelled when its client goes."""

    def __init__(
        self,
        produce: Callable[[Scope, Receive, Send], Awaitable[None]],
        done: Callable[[], None],
    ) -> None:
        super().__init__()
        self.produce = produce
        self.done = done

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await _unless_disconnected(self.produce(scope, receive, send), receive)
        except _ClientGone:
            pass
        finally:
            self.done()


class ChatCompletionsServer:
    """Serves one compiled graph as the model `model_name`.

    Raises:
        ValueError: When `host` is not a loopback address and `limits` has no
            key (and does not waive it).
        OSError: When the address cannot be bound.
    """

    def __init__(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        *,
        model_name: str = "attention-moa",
        host: str = "127.0.0.1",
        port: int = 8000,
        limits: ServeLimits | None = None,
    ) -> None:
        """Bind the address; `start()` or `serve_forever()` serves it."""
        self.graph = graph
        self.model_name = model_name
        self.limits = limits or ServeLimits()
        self.limits.check_bind(host)
        self._hosts = self.limits.hosts(host)
        self._running = 0
        app = Starlette(
            routes=[
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
            ],
            exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=head_deadline_protocol(self.limits.head_timeout),
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_keep_alive=5,
            h11_max_incomplete_event_size=64 * 1024,
        )
        self._socket = bind(host, port)
        self._bound = host
        self._server = uvicorn.Server(config)
        self._serving: Future[None] | None = None

    @property
    def base_url(self) -> str:
        """The `base_url` to give an OpenAI client."""
        host, port = self._socket.getsockname()[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"

    def _origin_allowed(self, origin: str) -> bool:
        port = self._socket.getsockname()[1]
        return self.limits.origin_allowed(origin, self._bound, port)

    @property
    def running(self) -> int:
        """Runs in progress now."""
        return self._running

    def start(self) -> ChatCompletionsServer:
        """Serve on the package's event loop; returns once it accepts requests."""
        if self._serving is None:
            self._serving = start_on_loop(self._server.serve(sockets=[self._socket]))
            deadline = time.monotonic() + 30
            while not self._server.started and time.monotonic() < deadline:
                if self._serving.done():
                    self._serving.result()  # raises what stopped it
                time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C), then stop."""
        self.start()
        assert self._serving is not None
        try:
            done = threading.Event()
            self._serving.add_done_callback(lambda _: done.set())
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving: close the socket, cancel the runs in progress."""
        self._server.should_exit = True
        self._server.force_exit = True
        if self._serving is not None:
            try:
                self._serving.result(timeout=10)
            except Exception:  # already reported, or the loop is gone
                log.debug("the server stopped with an error", exc_info=True)
        self._socket.close()

    async def _models(self, request: Request) -> Response:
        try:
            check_headers(
                request, self._hosts, self.limits.api_key, self._origin_allowed
            )
        except api.ApiError as error:
            return error_response(error)
        model = {"id": self.model_name, "object": "model", "owned_by": "attention-moa"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _chat(self, request: Request) -> Response:
        request_id = f"req_{uuid.uuid4().hex[:16]}"
        try:
            check_headers(
                request, self._hosts, self.limits.api_key, self._origin_allowed
            )
            check_json(request)
            chat = api.parse_request(
                await read_body(request, self.limits), self.model_name
            )
            if self._running >= self.limits.max_running:
                raise api.ApiError(
                    503,
                    f"the server is answering {self._running} requests, its most "
                    "at once; try again shortly.",
                    "server_error",
                    code="server_busy",
                    headers={"retry-after": "1"},
                )
            try:
                messages = convert_to_messages(chat.lc_messages())
            except (ValueError, TypeError, NotImplementedError) as exc:
                raise api.ApiError(400, f"invalid messages: {exc}") from None
        except api.ApiError as error:
            return error_response(error, request_id)
        self._running += 1
        run = Run(
            self.graph,
            self.model_name,
            chat,
            {"messages": messages},
            request_id,
            secret=self.limits.api_key,
        )
        if chat.stream:
            return _EventStream(run.stream, self._finished)
        try:
            body = await _unless_disconnected(run.answer(), request.receive)
        except _ClientGone:
            return Response(status_code=499)  # nobody reads it
        except api.ApiError as error:
            return error_response(error, request_id)
        finally:
            self._finished()
        return JSONResponse(body, headers={"x-request-id": request_id})

    def _finished(self) -> None:
        self._running -= 1


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own rejections (no route, wrong method) in OpenAI's shape."""
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    message = (
        f"no route {request.method} {request.url.path}"
        if exc.status_code in (404, 405)
        else str(exc.detail)
    )
    return error_response(api.ApiError(exc.status_code, message, kind))
