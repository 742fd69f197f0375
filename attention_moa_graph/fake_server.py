"""A loopback OpenAI-compatible chat-completions server for tests and benchmarks.

It answers `POST /v1/chat/completions` (plain and streamed, with usage) with a
reply that is a pure function of the model name and the messages, after a
configurable latency, and can inject the faults real providers produce: rate
limits, server errors, hangs, non-JSON bodies, empty replies and dropped
connections, scripted per model or for a seeded fraction of requests. Every
request is logged. Real clients (`langchain-openai`, `openai`) talk to it.

Run it in its own process with `python -m attention_moa_graph.fake_server`.

Example:
    >>> from attention_moa_graph.fake_server import FakeOpenAIServer
    >>> with FakeOpenAIServer(latency=0.0) as server:
    ...     url = server.base_url  # "http://127.0.0.1:<port>/v1"
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("429", "500", "503", "400", "401", "hang", "garbage", "empty", "drop")
"""HTTP errors, a hang, a non-JSON 200, an empty reply and a dropped socket."""

TRANSIENT_FAULTS = ("429", "500", "503", "hang", "garbage", "empty", "drop")

ReplyFn = Callable[[str, Sequence[Mapping[str, Any]]], str]


def default_reply(model: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """A deterministic reply naming the model and a digest of the prompt."""
    digest = hashlib.sha256(
        json.dumps([model, messages], sort_keys=True).encode()
    ).hexdigest()[:12]
    return f"{model} answers {digest}: a deterministic reply for tests."


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


@dataclass
class RequestRecord:
    """One request as the server saw it."""

    model: str
    stream: bool
    include_usage: bool
    messages: list[dict[str, Any]]
    fault: str | None
    started: float
    finished: float = 0.0
    authorization: str = ""


@dataclass
class FakeOpenAIServer:
    """The server; use as a context manager or call `start()` and `stop()`.

    Attributes:
        latency: Seconds before each reply, or a function of the request's model
            and messages returning seconds (e.g. a seeded heavy-tailed draw).
        chunk_delay: Seconds between streamed chunks.
        reply: The reply function `(model, messages) -> text`.
        scripted_faults: Model name -> faults for that model's first requests,
            in order (`None` in the list means a normal reply).
        fault_rate: Fraction of requests, chosen by a seeded digest of the
            request, that fail with one of `fault_kinds`.
        fault_kinds: The faults `fault_rate` draws from.
        seed: Seed of that choice; the same request body fails the same way on
            its n-th sending whatever the order requests arrive in.
        hang_seconds: How long a `hang` fault sleeps before dropping the socket.
        port: 0 picks a free port.
    """

    latency: float | Callable[[str, Sequence[Mapping[str, Any]]], float] = 0.0
    chunk_delay: float = 0.0
    reply: ReplyFn = default_reply
    scripted_faults: dict[str, list[str | None]] = field(default_factory=dict)
    fault_rate: float = 0.0
    fault_kinds: Sequence[str] = TRANSIENT_FAULTS
    seed: int = 0
    hang_seconds: float = 30.0
    port: int = 0
    log: list[RequestRecord] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _seen: dict[str, int] = field(default_factory=dict, init=False)
    _in_flight: int = field(default=0, init=False)
    peak_in_flight: int = field(default=0, init=False)
    _server: ThreadingHTTPServer | None = field(default=None, init=False)
    _stopping: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        """Reject unknown fault names early."""
        unknown = {f for f in self.fault_kinds if f not in FAULTS}
        for plan in self.scripted_faults.values():
            unknown |= {f for f in plan if f is not None and f not in FAULTS}
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")

    @property
    def base_url(self) -> str:
        """The `base_url` to give an OpenAI client."""
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeOpenAIServer:
        """Start serving on 127.0.0.1 in a background thread."""
        handler = _make_handler(self)
        self._server = _Server(("127.0.0.1", self.port), handler)
        self._stopping.clear()
        threading.Thread(
            target=self._server.serve_forever, name="fake-openai", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging requests are released."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAIServer:
        """Start the server."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop the server."""
        self.stop()

    def stats(self) -> dict[str, Any]:
        """Counts for a client in another process (`GET /stats`)."""
        with self._lock:
            faults: dict[str, int] = {}
            for record in self.log:
                if record.fault:
                    faults[record.fault] = faults.get(record.fault, 0) + 1
            return {
                "requests": len(self.log),
                "faults": faults,
                "peak_in_flight": self.peak_in_flight,
            }

    def requests_for(self, model: str) -> list[RequestRecord]:
        """The logged requests naming a model."""
        with self._lock:
            return [r for r in self.log if r.model == model]

    def choose_fault(self, model: str, body: bytes) -> str | None:
        """Decide this request's fault: scripted first, then the seeded rate."""
        with self._lock:
            plan = self.scripted_faults.get(model)
            if plan:
                return plan.pop(0)
            key = hashlib.sha256(body).hexdigest()
            occurrence = self._seen.get(key, 0)
            self._seen[key] = occurrence + 1
        if not self.fault_rate or not self.fault_kinds:
            return None
        draw = hashlib.sha256(f"{self.seed}|{key}|{occurrence}".encode()).digest()
        if int.from_bytes(draw[:8], "big") / 2**64 >= self.fault_rate:
            return None
        return self.fault_kinds[draw[8] % len(self.fault_kinds)]

    def delay(self, model: str, messages: Sequence[Mapping[str, Any]]) -> float:
        """Seconds to wait before answering this request."""
        if callable(self.latency):
            return float(self.latency(model, messages))
        return float(self.latency)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


def lognormal_latency(
    median: float, sigma: float, seed: int = 0
) -> Callable[[str, Sequence[Mapping[str, Any]]], float]:
    """Heavy-tailed latency: a seeded lognormal draw per request."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def draw(model: str, messages: Sequence[Mapping[str, Any]]) -> float:
        with lock:
            return median * math.exp(rng.gauss(0.0, sigma))

    return draw


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The default listen backlog of 5 resets connections when an ensemble sends
    # dozens of calls at once (N² critiques).
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or drop the socket are expected here."""


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

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
                return self._error(code, names[code], f"injected {fault}", **headers)
            if fault == "garbage":
                payload = b"<html>upstream proxy error</html>"
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return None
            text = "" if fault == "empty" else server.reply(model, messages)
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
                return self._json(
                    200,
                    {
                        **base,
                        "object": "chat.completion",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": usage,
                    },
                )
            self._stream(base, text, usage, include_usage)
            return None

        def _stream(
            self,
            base: dict[str, Any],
            text: str,
            usage: dict[str, int],
            include_usage: bool,
        ) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()

            def event(payload: object) -> None:
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

            words = text.split(" ") if text else []
            for index, word in enumerate(words):
                delta: dict[str, str] = {"content": word if index == 0 else " " + word}
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
            event(
                {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
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
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


@contextmanager
def server_process(*args: str) -> Iterator[str]:
    """Run the server in a process of its own; yields its base URL.

    Arguments are the command line's (`"--latency", "0.2"`, ...). A separate
    process keeps the server's work off the client's interpreter and core.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "attention_moa_graph.fake_server", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the fake server did not start (printed {url!r})")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def fetch_stats(base_url: str) -> dict[str, Any]:
    """`GET /stats` of a server, wherever it runs."""
    with urllib.request.urlopen(f"{base_url}/stats", timeout=10) as response:
        return dict(json.loads(response.read()))


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted, printing the base URL on the first line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="median seconds")
    parser.add_argument(
        "--sigma", type=float, default=0.0, help="lognormal spread (0: fixed latency)"
    )
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument(
        "--faults",
        default=",".join(TRANSIENT_FAULTS),
        help="comma-separated fault kinds that --fault-rate draws from",
    )
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    latency: float | Callable[[str, Sequence[Mapping[str, Any]]], float] = args.latency
    if args.sigma:
        latency = lognormal_latency(args.latency, args.sigma, args.seed)
    server = FakeOpenAIServer(
        latency=latency,
        chunk_delay=args.chunk_delay,
        fault_rate=args.fault_rate,
        fault_kinds=tuple(k for k in args.faults.split(",") if k),
        hang_seconds=args.hang_seconds,
        seed=args.seed,
        port=args.port,
    ).start()
    print(server.base_url, flush=True)  # noqa: T201 - the caller reads this line
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
