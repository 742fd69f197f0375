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
import hmac
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol

from attention_moa_graph.adapters.server._limits import ServeLimits
from attention_moa_graph.adapters.server._openai_api import ApiError


def _hostname(value: str) -> str:
    """The host part of a `Host` header value (`[::1]:8000` -> `::1`)."""
    return (urlsplit(f"//{value}").hostname or "").lower()


def check_headers(
    request: Request, hosts: frozenset[str] | None, api_key: str | None
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
        if origin is not None and (urlsplit(origin).hostname or "") not in hosts:
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
