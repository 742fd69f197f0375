"""One served request's run of the graph.

Its answer, plain or streamed, or what the client is told of its failure;
the operator's log has the rest, cleared of keys.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from attention_moa_graph._calls.errors import MoAError, MoAInputError, redact
from attention_moa_graph.adapters.server import _openai_api as api
from attention_moa_graph.adapters.streaming import StopGate, astream_answer, cut_at_stop

log = logging.getLogger("attention_moa_graph.serve")


class Run:
    """One request's run of the graph, plain or streamed."""

    def __init__(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        model_name: str,
        chat: api.ChatRequest,
        payload: dict[str, Any],
        request_id: str,
        *,
        secret: str | None = None,
    ) -> None:
        """Prepare the run; `secret` is kept out of what is logged."""
        self.graph = graph
        self.model_name = model_name
        self.secret = secret
        self.chat = chat
        self.payload = payload
        self.request_id = request_id

    async def answer(self) -> dict[str, Any]:
        """The completion body, or ApiError."""
        try:
            result = await self.graph.ainvoke(
                self.payload, context=self.chat.run_options()
            )
        except Exception as exc:
            raise self._failure(exc) from None
        return api.completion(
            result,
            cut_at_stop(result["final_answer"], self.chat.stops()),
            self.model_name,
        )

    async def stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the answer as server-sent events as it is written."""
        base = api.chunk_base(self.model_name)
        gate = StopGate(self.chat.stops())
        started = False
        first = True

        async def event(payload: object) -> None:
            nonlocal started
            if not started:
                started = True
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"text/event-stream"),
                            (b"cache-control", b"no-cache"),
                            (b"x-request-id", self.request_id.encode()),
                        ],
                    }
                )
            data = payload if isinstance(payload, str) else json.dumps(payload)
            await send(
                {
                    "type": "http.response.body",
                    "body": f"data: {data}\n\n".encode(),
                    "more_body": True,
                }
            )

        async def text(piece: str, *, opening: bool = False) -> None:
            nonlocal first
            if piece or opening:
                delta = {"content": piece}
                if first:
                    delta, first = {"role": "assistant", **delta}, False
                await event(api.chunk(base, delta))

        # Headers and a first chunk at once: a run takes seconds before its
        # answer starts, longer than many clients wait for a response to begin.
        await text("", opening=True)
        result: dict[str, Any] = {}
        # With tools the answer is known only whole (its calls are taken out of
        # the final stage's text): it comes in one piece, then its calls.
        whole = bool(self.chat.tools)
        try:
            async for item in astream_answer(
                self.graph, self.payload, context=self.chat.run_options()
            ):
                if item.kind == "token" and not whole:
                    await text(gate.feed(item.data))
                elif item.kind == "result":
                    result = item.data
        except Exception as exc:
            # Headers are out: the failure is told in the stream itself.
            await event(self._failure(exc).body())
        else:
            if whole:
                await text(cut_at_stop(result["final_answer"], self.chat.stops()))
            else:
                await text(gate.finish())
            calls = api.tool_calls(result)
            if calls:
                delta: dict[str, Any] = {
                    "tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]
                }
                if first:
                    delta, first = {"role": "assistant", **delta}, False
                await event(api.chunk(base, delta))
            await event(api.chunk(base, {}, "tool_calls" if calls else "stop"))
            options = self.chat.stream_options
            if options is not None and options.include_usage:
                await event({**base, "choices": [], "usage": api.usage(result)})
        await event("[DONE]")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _failure(self, exc: Exception) -> api.ApiError:
        """What the client is told of a failed run; the operator's log has more."""
        if isinstance(exc, MoAInputError):
            return api.ApiError(400, str(exc))
        detail = redact(f"{type(exc).__name__}: {exc}", self.secret)
        if isinstance(exc, MoAError):
            log.error("request %s: the ensemble failed: %s", self.request_id, detail)
            return api.ApiError(
                502,
                f"the ensemble's models failed to answer (request {self.request_id}; "
                "the server's log has the detail).",
                "upstream_error",
                code="upstream_error",
            )
        log.error("request %s failed: %s", self.request_id, detail)
        return api.ApiError(
            500,
            f"the server failed (request {self.request_id}; its log has the detail).",
            "server_error",
        )


def error_response(error: api.ApiError, request_id: str | None = None) -> JSONResponse:
    """OpenAI's error body for `error`, with its status and headers."""
    headers = dict(error.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return JSONResponse(error.body(), status_code=error.status, headers=headers)
