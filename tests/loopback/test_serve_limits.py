"""`serve` against hostile and careless clients: keys, hosts, bad bodies, limits,
clients that go away, upstream errors that carry secrets."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import openai
import pytest

from attention_moa_graph import Proposer, create_attention_moa
from attention_moa_graph.adapters.server import ChatCompletionsServer, ServeLimits
from attention_moa_graph.testing import ScriptedChatModel
from attention_moa_graph.testing.demo import demo_model
from tests.helpers import fake_agents, fast_retries, openai_model, wait_for

ASK = {"model": "attention-moa", "messages": [{"role": "user", "content": "hi"}]}


def graph_of(latency: float = 0.0, **options):
    options.setdefault("max_layers", 1)
    return create_attention_moa(
        fake_agents(["a", "b"], latency=latency),
        aggregator=ScriptedChatModel(model_name="agg", latency=latency),
        **options,
    )


@pytest.fixture
def serve():
    servers: list[ChatCompletionsServer] = []

    def start(graph=None, **limits) -> ChatCompletionsServer:
        server = ChatCompletionsServer(
            graph or graph_of(), port=0, limits=ServeLimits(**limits)
        )
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


def address(server) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").removesuffix("/v1").split(":")
    return host, int(port)


def raw(server, data: bytes, *, timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send bytes as they are; the status, headers and body of the reply."""
    with socket.create_connection(address(server), timeout=timeout) as conn:
        conn.sendall(data)
        reply = b""
        while b"\r\n\r\n" not in reply:
            part = conn.recv(65536)
            if not part:
                raise ConnectionError(f"closed with no full reply: {reply!r}")
            reply += part
        head, _, body = reply.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(
            (k.strip().lower(), v.strip())
            for k, v in (line.split(":", 1) for line in lines[1:])
        )
        while len(body) < int(headers.get("content-length", len(body))):
            part = conn.recv(65536)
            if not part:
                break
            body += part
    return int(lines[0].split()[1]), headers, body


def streamed_request(host: str, port: int, *, close: bool = False) -> bytes:
    """The bytes of a streamed chat request (`Connection: close` if `close`)."""
    body = json.dumps({**ASK, "stream": True}).encode()
    ending = "Connection: close\r\n" if close else ""
    return (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\n{ending}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _events(body: bytes, headers: dict) -> list:
    """The server-sent events of a streamed reply (read to its end)."""
    text = body.decode()
    if headers.get("transfer-encoding") == "chunked":
        text, rest = "", body
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            if not int(size, 16):
                break
            text += rest[: int(size, 16)].decode()
            rest = rest[int(size, 16) + 2 :]
    found = []
    for line in text.split("\n"):
        if line.startswith("data: "):
            data = line.removeprefix("data: ")
            found.append(data if data == "[DONE]" else json.loads(data))
    return found


def post(
    server,
    body: bytes | str | dict,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict, dict]:
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    host, port = address(server)
    fields = {
        "Host": f"{host}:{port}",
        "Content-Type": content_type,
        "Content-Length": str(len(body)),
        "Connection": "close",
        **(headers or {}),
    }
    head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    status, reply_headers, reply = raw(
        server, f"POST /v1/chat/completions HTTP/1.1\r\n{head}\r\n".encode() + body
    )
    return status, reply_headers, json.loads(reply) if reply else {}


def test_a_port_out_of_range_or_in_use_is_one_clear_error():
    for port in (99999, -1):
        with pytest.raises(ValueError, match="is no port: give 1 to 65535"):
            ChatCompletionsServer(graph_of(), port=port)
    taken = ChatCompletionsServer(graph_of(), port=0)
    try:
        _, port = address(taken)
        with pytest.raises(OSError, match=f"port {port} on 127.0.0.1 is in use"):
            ChatCompletionsServer(graph_of(), port=port)
    finally:
        taken.stop()


def test_a_public_address_needs_a_key_or_an_explicit_waiver():
    with pytest.raises(ValueError, match="ATTENTION_MOA_API_KEY.*--server-key-env"):
        ChatCompletionsServer(graph_of(), host="0.0.0.0", port=0)
    with pytest.raises(ValueError, match="--insecure-no-auth"):
        ChatCompletionsServer(graph_of(), host="0.0.0.0", port=0)
    for limits in (ServeLimits(api_key="k" * 20), ServeLimits(insecure_no_auth=True)):
        ChatCompletionsServer(graph_of(), host="0.0.0.0", port=0, limits=limits).stop()


def test_with_a_key_only_requests_that_send_it_are_answered(serve):
    server = serve(api_key="sk-serve-3d1f0a9b77c2")
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "sk-serve-3d1f0a9b77c2"},
    ):
        status, reply_headers, body = post(server, ASK, headers=headers)
        assert status == 401 and reply_headers["www-authenticate"] == "Bearer"
        assert body["error"]["code"] == "invalid_api_key"
    good = openai.OpenAI(base_url=server.base_url, api_key="sk-serve-3d1f0a9b77c2")
    assert good.chat.completions.create(**ASK).choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.base_url, api_key="nope").models.list()


def test_foreign_hosts_and_origins_are_refused(serve):
    server = serve()
    status, _, body = post(server, ASK, headers={"Host": "attacker.example:80"})
    assert status == 400 and body["error"]["code"] == "invalid_host"
    status, _, body = post(server, ASK, headers={"Origin": "http://attacker.example"})
    assert status == 403 and body["error"]["code"] == "invalid_origin"
    host, port = address(server)
    status, _, _ = post(server, ASK, headers={"Origin": f"http://localhost:{port}"})
    assert status == 200
    # Another port of this machine is another origin (another local web app).
    for origin in (f"http://localhost:{port + 1}", "http://127.0.0.1", "null"):
        status, _, body = post(server, ASK, headers={"Origin": origin})
        assert status == 403 and body["error"]["code"] == "invalid_origin", origin
    named = serve(allowed_hosts=("app.example",))
    status, _, _ = post(named, ASK, headers={"Origin": "https://app.example"})
    assert status == 200
    allowed = serve(allowed_hosts=("moa.internal",))
    status, _, _ = post(allowed, ASK, headers={"Host": "moa.internal"})
    assert status == 200


def test_only_json_bodies_are_read(serve):
    status, _, body = post(serve(), json.dumps(ASK), content_type="text/plain")
    assert (
        status == 415 and "Content-Type: application/json" in body["error"]["message"]
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[1]", "body: Input should be an object"),
        (b"null", "body: Input should be an object"),
        (b'{"messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "recursion limit"),
        ({**ASK, "messages": "hi"}, "messages: Input should be a valid array"),
        (
            json.dumps(ASK).replace('"hi"', '"\\ud800"'),
            "must be half of a surrogate pair",
        ),
        (b"{", "Invalid JSON"),
        ({**ASK, "stream": "yes"}, "stream: Input should be a valid boolean"),
        ({**ASK, "max_tokens": "10"}, "max_tokens: Input should be a valid integer"),
        ({**ASK, "max_tokens": 10**12}, "less than or equal to 1000000"),
        ({**ASK, "top_p": 5}, "top_p: Input should be less than or equal to 1"),
        ({**ASK, "top_p": 0.5}, "top_p is not supported"),
        ({**ASK, "messages": []}, "messages: List should have at least 1 item"),
        ({**ASK, "messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        (
            {**ASK, "temperature": 9},
            "temperature: Input should be less than or equal to 2",
        ),
        ({**ASK, "n": 2}, "n must be 1"),
        (
            {
                **ASK,
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": "g",
            },
            "tool_choice 'g' names no tool",
        ),
        ({**ASK, "tools": [42]}, "tools.0: Input should be an object"),
        ({**ASK, "tools": [{"type": "function"}]}, "cannot use"),
        ({**ASK, "response_format": {"type": "xml"}}, "response_format must be"),
        (
            {**ASK, "messages": [{"role": "assistant", "content": "hi"}]},
            "last message must be",
        ),
    ],
)
def test_a_bad_body_is_a_400_that_says_why(serve, body, says):
    status, _, reply = post(serve(), body)
    assert status == 400, reply
    assert says in reply["error"]["message"]
    assert "[[[[" not in reply["error"]["message"]  # the input is not echoed


def test_another_models_name_is_a_404_and_unknown_fields_are_ignored(serve):
    server = serve()
    status, _, body = post(server, {**ASK, "model": "gpt-4o"})
    assert status == 404 and body["error"]["code"] == "model_not_found"
    status, _, body = post(server, {**ASK, "logit_bias": {}, "user": "u1", "seed": 3})
    assert status == 200 and body["choices"][0]["message"]["content"]


def test_bodies_above_the_cap_are_refused_without_reading_them_whole(serve):
    server = serve(max_body_bytes=10_000)
    status, _, body = post(server, {**ASK, "pad": "x" * 20_000})
    assert status == 413 and "10,000 bytes" in body["error"]["message"]
    # Without a length, the cap holds while the chunks arrive.
    host, port = address(server)
    chunk = b"x" * 4096
    stream = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5))
    status, _, _ = raw(
        server,
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + stream,
    )
    assert status == 413


def test_a_negative_content_length_is_refused_at_once(serve):
    server = serve()
    host, port = address(server)
    started = time.monotonic()
    status, headers, body = raw(
        server,
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: -1\r\n\r\n".encode(),
    )
    assert status == 400 and time.monotonic() - started < 5
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "invalid_http"


def test_slow_clients_are_cut_off(serve):
    server = serve(head_timeout=0.5, body_timeout=0.5)
    host, port = address(server)
    with socket.create_connection(address(server), timeout=10) as conn:
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: ")
        started = time.monotonic()
        assert conn.recv(1024) == b""  # closed by the server
        assert time.monotonic() - started < 5
    status, _, body = raw(
        server,
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode(),
    )
    assert status == 408 and b"did not arrive within 0.5 s" in body


def test_beyond_the_runs_at_once_a_request_gets_503_and_retry_after(serve):
    server = serve(graph_of(latency=0.3), max_running=1)
    first: dict = {}
    worker = threading.Thread(target=lambda: first.update(reply=post(server, ASK)))
    worker.start()
    deadline = time.monotonic() + 5
    while server.running == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    status, headers, body = post(server, ASK)
    worker.join(timeout=30)
    assert status == 503 and headers["retry-after"] == "1"
    assert body["error"]["code"] == "server_busy"
    assert first["reply"][0] == 200 and server.running == 0


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_goes_away_cancels_its_run(serve, stream):
    agents = fake_agents(["a", "b"], latency=0.2)
    chair = ScriptedChatModel(model_name="agg", latency=0.2)
    server = serve(create_attention_moa(agents, aggregator=chair, max_layers=2))
    models = [a.model for a in agents] + [chair]
    host, port = address(server)
    body = json.dumps({**ASK, "stream": stream}).encode()
    with socket.create_connection((host, port)) as conn:
        conn.sendall(
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        wait_for(lambda: server.running == 1)  # the run has started
        time.sleep(0.3)  # the drafts are under way
    wait_for(lambda: server.running == 0)  # the run was cancelled
    made = _settled(lambda: sum(len(m.calls) for m in models))  # calls in flight end
    time.sleep(1.5)  # a whole run of 2 layers would take 1.6 s more
    assert sum(len(m.calls) for m in models) == made
    # The drafts ran, and the 4 critiques that had started (0.2-0.4 s); no call
    # started after the client left at 0.3 s: no refinement, no summary (a
    # whole run makes 20 calls).
    assert made <= 2 + 4


def _settled(count, quiet: float = 0.5, seconds: float = 10.0) -> int:
    """`count()` once it has not changed for `quiet` seconds."""
    deadline = time.monotonic() + seconds
    last, since = count(), time.monotonic()
    while time.monotonic() - since < quiet:
        assert time.monotonic() < deadline, "still changing"
        time.sleep(0.05)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
    return last


def test_run_options_and_stop_reach_the_run(serve, fake_server):
    graph = create_attention_moa(
        [Proposer(n, openai_model(fake_server.base_url, n)) for n in ("a", "b")],
        aggregator=openai_model(fake_server.base_url, "agg"),
        max_layers=1,
    )
    server = serve(graph)
    client = openai.OpenAI(base_url=server.base_url, api_key="unused")
    full = client.chat.completions.create(**ASK).choices[0].message.content
    fake_server.log.clear()
    word = full.split()[3]
    reply = client.chat.completions.create(
        **ASK, max_tokens=64, temperature=0.5, stop=[word]
    )
    assert reply.choices[0].message.content == full[: full.index(word)]
    params = [r.params for r in fake_server.log]
    assert {p.get("max_tokens") for p in params} == {64}
    assert {p.get("temperature") for p in params} == {0.5}
    streamed = client.chat.completions.create(**ASK, stop=word, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == full[: full.index(word)]


def test_upstream_errors_reach_the_client_as_a_bare_502_and_the_log_without_keys(
    serve, monkeypatch, caplog
):
    secret = "sk-upstream-5e0c2b7d41a9f366"
    monkeypatch.setenv("UPSTREAM_API_KEY", secret)

    def refuse(messages):
        raise RuntimeError(f"Error code: 401 - Incorrect API key provided: {secret}")

    agents = [Proposer(n, ScriptedChatModel(reply=refuse)) for n in ("a", "b")]
    graph = create_attention_moa(
        agents,
        aggregator=ScriptedChatModel(),
        max_layers=1,
        retry_policy=fast_retries(1),
    )
    server = serve(graph)
    caplog.set_level(logging.ERROR, logger="attention_moa_graph.serve")
    status, headers, body = post(server, ASK)
    assert status == 502 and body["error"]["type"] == "upstream_error"
    assert headers["x-request-id"] in body["error"]["message"]
    assert secret not in json.dumps(body) and "Error code" not in json.dumps(body)
    # A stream has sent its headers by then: the failure is its last event.
    host, port = address(server)
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(streamed_request(host, port, close=True))
        whole = b"".join(iter(lambda: conn.recv(65536), b""))
    head, _, raw_body = whole.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    headers = dict(
        (k.strip().lower(), v.strip())
        for k, v in (line.split(":", 1) for line in head.decode().split("\r\n")[1:])
    )
    events = _events(raw_body, headers)
    assert status == 200 and events[-1] == "[DONE]"
    (failure,) = [e for e in events if isinstance(e, dict) and "error" in e]
    assert failure["error"]["type"] == "upstream_error"
    assert headers["x-request-id"] in failure["error"]["message"]
    assert secret not in raw_body.decode() and "Error code" not in raw_body.decode()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Incorrect API key provided: [redacted]" in logged and secret not in logged


def test_served_demo_models_keep_a_bounded_record():
    model = demo_model("chair")
    for index in range(150):
        model.invoke(f"question {index}")
    assert len(model.calls) == 100
    assert model.calls[-1].prompt.endswith("question 149")


def test_a_stream_sends_its_headers_and_a_first_chunk_before_the_run_answers(serve):
    # Every model call takes 30 s; the headers must not wait for them.
    server = serve(graph_of(latency=30.0))
    host, port = address(server)
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(streamed_request(host, port))
        reply = b""
        while b"data: " not in reply or not reply.endswith(b"\r\n"):
            part = conn.recv(65536)  # times out (an error) after 10 s
            assert part, reply
            reply += part
    assert reply.startswith(b"HTTP/1.1 200") and b"text/event-stream" in reply
    first = json.loads(reply.split(b"data: ", 1)[1].split(b"\n", 1)[0])
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
