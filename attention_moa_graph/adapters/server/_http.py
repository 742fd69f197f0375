"""What stands between the network and the ensemble: limits, key and host checks.

uvicorn bounds header size but not the time a client may take to send a
request's head, so a client that opens a connection and sends half a line
would hold it open for good; `head_deadline_protocol` closes such a connection.
The request checks run in the order that costs least: the Host and Origin
(so a web page the operator visits cannot reach a loopback server), the key,
the content type, then the body, read against a size cap and a deadline.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import json
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import h11
from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol

from attention_moa_graph.adapters.server._limits import ServeLimits
from attention_moa_graph.adapters.server._openai_api import ApiError


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port`, or an error that says what to change.

    Bound here rather than by uvicorn, which logs a failure and exits the
    process.

    Raises:
        ValueError: If `port` is not 0 (any free port) to 65535.
        OSError: If the address cannot be bound (in use, not this machine's).
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port {port!r} is no port: give 1 to 65535 (0: any free one)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as exc:
        raise OSError(f"cannot listen on {host!r}: no such address ({exc})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Listening at once holds the port: two sockets bound with SO_REUSEADDR
    # may share one until either listens.
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OSError(
                exc.errno,
                f"port {port} on {host} is in use (another server?): stop it or "
                "choose another port",
            ) from None
        raise OSError(
            exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    sock.set_inheritable(True)
    return sock


def _hostname(value: str) -> str:
    """The host part of a `Host` header value (`[::1]:8000` -> `::1`)."""
    return (urlsplit(f"//{value}").hostname or "").lower()


def check_headers(
    request: Request,
    hosts: frozenset[str] | None,
    api_key: str | None,
    origin_allowed: Callable[[str], bool],
) -> None:
    """The checks that need only the headers.

    Raises:
        ApiError: 400 for a foreign Host, 403 for a foreign Origin, 401 for a
            missing or wrong key, 415 for a body that is not JSON.
    """
    if hosts is not None:
        if _hostname(request.headers.get("host", "")) not in hosts:
            raise ApiError(
                400,
                "the Host header names a host this server does not answer to; "
                "the operator can add it with --allowed-host.",
                code="invalid_host",
            )
        origin = request.headers.get("origin")
        if origin is not None and not origin_allowed(origin):
            raise ApiError(
                403,
                "requests from web pages of other origins are refused.",
                "permission_error",
                code="invalid_origin",
            )
    if api_key is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), api_key.encode()
        ):
            raise ApiError(
                401,
                "a valid API key is required: send Authorization: Bearer <key>.",
                "authentication_error",
                code="invalid_api_key",
                headers={"www-authenticate": "Bearer"},
            )


def check_json(request: Request) -> None:
    """Raises ApiError 415 unless the body is declared JSON."""
    declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared != "application/json":
        raise ApiError(
            415,
            "the request body must be JSON, sent with Content-Type: application/json.",
            code="unsupported_media_type",
        )


async def read_body(request: Request, limits: ServeLimits) -> bytes:
    """The body, read within the size cap and the deadline.

    Raises:
        ApiError: 413 above `max_body_bytes`, 408 past `body_timeout`.
    """
    too_large = ApiError(
        413,
        f"the request body is larger than this server takes "
        f"({limits.max_body_bytes:,} bytes).",
        code="request_too_large",
    )
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isdigit()
        and int(declared) > limits.max_body_bytes
    ):
        raise too_large
    parts: list[bytes] = []

    async def read() -> None:
        size = 0
        async for part in request.stream():
            size += len(part)
            if size > limits.max_body_bytes:
                raise too_large
            parts.append(part)

    try:
        await asyncio.wait_for(read(), limits.body_timeout)
    except asyncio.TimeoutError:
        raise ApiError(
            408,
            f"the request body did not arrive within {limits.body_timeout:g} s.",
            code="request_timeout",
        ) from None
    return b"".join(parts)


class _HeadDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing connections whose head is late."""

    head_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(None)

    def on_response_complete(self) -> None:
        finished = self.cycle  # before a pipelined request replaces it
        super().on_response_complete()
        self._arm(finished)

    def send_400_response(self, msg: str) -> None:
        """A request h11 cannot parse gets OpenAI's error body, not plain text."""
        error = ApiError(
            400,
            f"the request is not valid HTTP/1.1 ({msg.rstrip('.')}): check its "
            "request line and headers (Content-Length, Transfer-Encoding).",
            code="invalid_http",
        )
        body = json.dumps(error.body()).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()

    def _arm(self, waiting_after: Any) -> None:
        def expire() -> None:
            # Still no new request since the deadline was set: the head is late.
            if self.cycle is waiting_after and not self.transport.is_closing():
                self.transport.close()

        if not self.transport.is_closing():
            self.loop.call_later(self.head_timeout, expire)


def head_deadline_protocol(seconds: float) -> type[H11Protocol]:
    """Uvicorn's h11 protocol with a deadline of `seconds` for request heads."""
    return type("HeadDeadlineProtocol", (_HeadDeadline,), {"head_timeout": seconds})
