"""An OpenAI-compatible `/v1/chat/completions` endpoint backed by the ensemble.

Any OpenAI client can then use Attention-MoA as if it were one model:
plain and streamed completions, with usage. Requests are stateless (send the
whole conversation each time, as with OpenAI). It binds to 127.0.0.1 unless
told otherwise and has no authentication of its own: put it behind one before
exposing it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.messages import convert_to_messages
from langgraph.graph.state import CompiledStateGraph

from attention_moa_graph._calls.errors import MoAError, MoAInputError
from attention_moa_graph._calls.loop import iterate_sync
from attention_moa_graph.adapters.streaming import astream_answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many clients at once; the default backlog is 5


class ChatCompletionsServer:
    """Serves one compiled graph as the model `model_name`."""

    def __init__(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        *,
        model_name: str = "attention-moa",
        host: str = "127.0.0.1",
        port: int = 8000,
    ) -> None:
        """Prepare the server; `start()` or `serve_forever()` runs it."""
        self.graph = graph
        self.model_name = model_name
        self._server = _Server((host, port), _make_handler(self))

    @property
    def base_url(self) -> str:
        """The `base_url` to give an OpenAI client."""
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}/v1"

    def start(self) -> ChatCompletionsServer:
        """Serve in a background thread."""
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def completion(self, result: dict[str, Any]) -> dict[str, Any]:
        """The OpenAI response body for a finished run."""
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result["final_answer"]},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(result),
            "attention_moa": {
                "stop_reason": result["stop_reason"],
                "layers": len(result["layers"]),
                "usage": result["usage"],
            },
        }


def _usage(result: dict[str, Any]) -> dict[str, int]:
    total = result["usage"]["total"]
    return {
        "prompt_tokens": total["input_tokens"],
        "completion_tokens": total["output_tokens"],
        "total_tokens": total["total_tokens"],
    }


def _make_handler(app: ChatCompletionsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the CLI prints its own line per request."""

        def _json(self, code: int, payload: object) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, code: int, message: str, kind: str) -> None:
            self._json(code, {"error": {"message": message, "type": kind}})

        def do_GET(self) -> None:
            """List the one model served."""
            if self.path.rstrip("/") == "/v1/models":
                model = {"id": app.model_name, "object": "model", "owned_by": "local"}
                self._json(200, {"object": "list", "data": [model]})
            else:
                self._error(404, f"no route {self.path}", "not_found")

        def do_POST(self) -> None:
            """Answer a chat completion request."""
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._error(404, f"no route {self.path}", "not_found")
            try:
                length = int(self.headers.get("content-length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                messages = convert_to_messages(request.get("messages") or [])
            except (ValueError, TypeError, NotImplementedError) as exc:
                return self._error(
                    400, f"bad request body: {exc}", "invalid_request_error"
                )
            include_usage = bool(
                (request.get("stream_options") or {}).get("include_usage")
            )
            try:
                if request.get("stream"):
                    self._stream({"messages": messages}, include_usage)
                else:
                    result = app.graph.invoke({"messages": messages})
                    self._json(200, app.completion(result))
            except MoAInputError as exc:
                self._error(400, str(exc), "invalid_request_error")
            except MoAError as exc:
                self._error(502, str(exc), "upstream_error")
            return None

        def _stream(self, payload: dict[str, Any], include_usage: bool) -> None:
            base = {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": app.model_name,
            }
            started = False

            def send(delta: dict[str, Any], finish: str | None = None) -> None:
                nonlocal started
                if not started:
                    started = True
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("connection", "close")
                    self.end_headers()
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
                self._event({**base, "choices": [choice]})

            result: dict[str, Any] = {}
            first = True
            try:
                for event in iterate_sync(astream_answer(app.graph, payload)):
                    if event.kind == "token":
                        delta = {"content": event.data}
                        if first:
                            delta["role"] = "assistant"
                            first = False
                        send(delta)
                    elif event.kind == "result":
                        result = event.data
            except MoAError as exc:
                if not started:
                    raise
                # Headers are out: report the failure in the stream itself.
                self._event({"error": {"message": str(exc), "type": "upstream_error"}})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True
                return
            send({}, finish="stop")
            if include_usage:
                self._event({**base, "choices": [], "usage": _usage(result)})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _event(self, payload: object) -> None:
            self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
            self.wfile.flush()

    return Handler
