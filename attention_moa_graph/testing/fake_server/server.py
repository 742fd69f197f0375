"""The fake server's state: faults, latency, the request log."""

from __future__ import annotations

import hashlib
import json
import math
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

FAULTS = ("429", "500", "503", "400", "401", "hang", "garbage", "empty", "drop")
"""HTTP errors, a hang, a non-JSON 200, an empty reply and a dropped socket."""

TRANSIENT_FAULTS = ("429", "500", "503", "hang", "garbage", "empty", "drop")

ReplyFn = Callable[[str, Sequence[Mapping[str, Any]]], str]


def default_reply(model: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """A deterministic reply naming the model and a digest of the prompt.

    Three families of model names act as fixed judges for the evaluation tests:
    `judge-rating-<x>` writes a short review ending in `Rating: [[<x>]]`;
    `judge-likes-<word>` rates 9 when the last message holds `<word>` and 3
    otherwise (a judge that tells answers apart); `judge-says-<token>` replies
    with just `<token>` (AlpacaEval's `m`/`M`).
    """
    if model.startswith("judge-likes-"):
        last = str(messages[-1].get("content", "")) if messages else ""
        rating = 9 if model[12:].lower() in last.lower() else 3
        return f"Judged on one word. Rating: [[{rating}]]"
    if model.startswith("judge-rating-"):
        return f"The answer is relevant and clear. Rating: [[{model[13:]}]]"
    if model.startswith("judge-says-"):
        return model[11:]
    digest = hashlib.sha256(
        json.dumps([model, messages], sort_keys=True).encode()
    ).hexdigest()[:12]
    return f"{model} answers {digest}: a deterministic reply for tests."


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
    params: dict[str, Any] = field(default_factory=dict)
    """The request's other fields (`temperature`, the token cap, ...)."""


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
        from attention_moa_graph.testing.fake_server.handler import make_handler

        handler = make_handler(self)
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
