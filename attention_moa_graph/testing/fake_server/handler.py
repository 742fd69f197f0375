"""The fake server's HTTP handler: OpenAI's chat-completions protocol, and faults."""

from __future__ import annotations

import hashlib
import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

# server.py imports this module only inside FakeOpenAIServer.start(): no cycle.
from attention_moa_graph.testing.fake_server.server import (
    FakeOpenAIServer,
    RequestRecord,
    default_reply,
)
from attention_moa_graph.testing.fake_server.tools import structured_reply, tool_reply


def _words(text: str) -> int:
    return len(text.split())


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content if isinstance(part, dict)
        )
    return ""


def _logprobs(text: str) -> dict[str, Any]:
    """Log-probabilities of the first token: the reply's first word, certain."""
    words = text.split()
    token = words[0] if words else ""
    entry = {"token": token, "logprob": 0.0, "bytes": list(token.encode())}
    return {"content": [{**entry, "top_logprobs": [entry]}]}


def _reply(
    server: FakeOpenAIServer,
    request: dict[str, Any],
    model: str,
    messages: list[dict[str, Any]],
) -> tuple[str, list[dict[str, Any]]]:
    """The reply's text and tool calls.

    With the default reply function, requests with tools or a
    `response_format` get the deterministic replies of `tools`; a test's own
    reply function answers everything itself.
    """
    if server.reply is default_reply:
        called = tool_reply(request, messages)
        if called is not None:
            return called
        structured = structured_reply(request, messages)
        if structured is not None:
            return structured, []
    return server.reply(model, messages), []


def make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one server's state."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes; with Nagle's algorithm on, the
        # body waits for the client's delayed ACK (about 40 ms on Linux), which
        # would add to every call what no real server adds.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

        def _json(self, code: int, payload: object, **headers: str) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, code: int, kind: str, message: str, **headers: str) -> None:
            self._json(code, {"error": {"message": message, "type": kind}}, **headers)

        def do_GET(self) -> None:
            """Answer the model listing some clients probe, and `/stats`."""
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": []})
            elif self.path.rstrip("/").endswith("/stats"):
                self._json(200, server.stats())
            else:
                self._error(404, "not_found", f"no route {self.path}")

        def do_POST(self) -> None:
            """Answer a chat completion, or fail as planned."""
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                return self._error(404, "not_found", f"no route {self.path}")
            try:
                request = json.loads(body or b"{}")
            except json.JSONDecodeError:
                return self._error(400, "invalid_request_error", "body is not JSON")
            model = str(request.get("model", ""))
            messages = list(request.get("messages") or [])
            stream = bool(request.get("stream"))
            include_usage = bool(
                (request.get("stream_options") or {}).get("include_usage")
            )
            fault = server.choose_fault(model, body)
            record = RequestRecord(
                model=model,
                stream=stream,
                include_usage=include_usage,
                messages=messages,
                fault=fault,
                started=time.monotonic(),
                authorization=self.headers.get("authorization", ""),
                params={k: v for k, v in request.items() if k != "messages"},
            )
            with server._lock:
                server.log.append(record)
            server._enter()
            try:
                self._answer(request, model, messages, stream, include_usage, fault)
            finally:
                record.finished = time.monotonic()
                server._leave()

        def _answer(
            self,
            request: dict[str, Any],
            model: str,
            messages: list[dict[str, Any]],
            stream: bool,
            include_usage: bool,
            fault: str | None,
        ) -> None:
            if fault == "hang":
                server._stopping.wait(server.hang_seconds)
                self.close_connection = True
                return None
            wait = server.delay(model, messages)
            if wait > 0 and server._stopping.wait(wait):
                self.close_connection = True
                return None
            if fault == "drop":
                self.close_connection = True
                return None
            if fault in ("429", "500", "503", "400", "401"):
                code = int(fault)
                names = {
                    429: "rate_limit_exceeded",
                    500: "server_error",
                    503: "server_error",
                    400: "invalid_request_error",
                    401: "invalid_api_key",
                }
                headers = {"retry_after": "0"} if code == 429 else {}
                said = f"injected {fault}"
                if code == 401:
                    # As careless providers do: the key that was sent, in clear.
                    sent = self.headers.get("authorization", "").removeprefix("Bearer ")
                    said = f"Incorrect API key provided: {sent}"
                return self._error(code, names[code], said, **headers)
            if fault == "garbage":
                payload = b"<html>upstream proxy error</html>"
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return None
            text, calls = "", list[dict[str, Any]]()
            if fault != "empty":
                text, calls = _reply(server, request, model, messages)
            stops = request.get("stop") or []
            stops = [stops] if isinstance(stops, str) else stops
            cuts = [
                text.find(s) for s in stops if isinstance(s, str) and s and s in text
            ]
            text = text[: min(cuts)] if cuts else text  # as a real server ends
            prompt_tokens = sum(
                _words(_content_text(m.get("content"))) for m in messages
            )
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": _words(text),
                "total_tokens": prompt_tokens + _words(text),
            }
            base = {
                "id": "chatcmpl-" + hashlib.sha256(text.encode()).hexdigest()[:16],
                "created": int(time.time()),
                "model": model,
            }
            if not stream:
                message: dict[str, Any] = {"role": "assistant", "content": text}
                if calls:
                    message.update(content=text or None, tool_calls=calls)
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
                if request.get("logprobs"):
                    choice["logprobs"] = _logprobs(text)
                return self._json(
                    200,
                    {
                        **base,
                        "object": "chat.completion",
                        "choices": [choice],
                        "usage": usage,
                    },
                )
            self._stream(base, text, calls, usage, include_usage)
            return None

        def _stream(
            self,
            base: dict[str, Any],
            text: str,
            calls: list[dict[str, Any]],
            usage: dict[str, int],
            include_usage: bool,
        ) -> None:
            # Chunked, as OpenAI and llama.cpp send streams: the connection is
            # kept for the client's next request.
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()

            def send(data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def event(payload: object) -> None:
                send(b"data: " + json.dumps(payload).encode() + b"\n\n")

            words = text.split(" ") if text else []
            for index, word in enumerate(words):
                delta: dict[str, Any] = {"content": word if index == 0 else " " + word}
                if index == 0:
                    delta["role"] = "assistant"
                event(
                    {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [
                            {"index": 0, "delta": delta, "finish_reason": None}
                        ],
                    }
                )
                if server.chunk_delay:
                    time.sleep(server.chunk_delay)
            for index, call in enumerate(calls):
                # The name first, then the arguments in two pieces, as OpenAI
                # streams them.
                arguments = call["function"]["arguments"]
                half = len(arguments) // 2
                pieces = [
                    {
                        "index": index,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""},
                    },
                    {"index": index, "function": {"arguments": arguments[:half]}},
                    {"index": index, "function": {"arguments": arguments[half:]}},
                ]
                for number, piece in enumerate(pieces):
                    delta = {"tool_calls": [piece]}
                    if number == 0 and index == 0 and not words:
                        delta["role"] = "assistant"
                    event(
                        {
                            **base,
                            "object": "chat.completion.chunk",
                            "choices": [
                                {"index": 0, "delta": delta, "finish_reason": None}
                            ],
                        }
                    )
            finish = "tool_calls" if calls else "stop"
            event(
                {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                }
            )
            if include_usage:
                event(
                    {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [],
                        "usage": usage,
                    }
                )
            send(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")  # the last chunk
            self.wfile.flush()

    return Handler
