"""`ServeLimits`: what one server lets its clients do.

Kept apart from the server's HTTP code so that the command line can show the
defaults without importing Starlette and uvicorn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class ServeLimits:
    """What one server lets a client do.

    Attributes:
        api_key: The key every request must send as `Authorization: Bearer`;
            None: no key (allowed on loopback addresses only, unless
            `insecure_no_auth`).
        allowed_hosts: Host names the `Host` and `Origin` headers may name,
            beside the loopback names and the bound address (whose origins
            must also name the server's port); `*`: any.
        max_body_bytes: Largest request body (413 above it).
        max_running: Most runs at once; more requests get 503 and Retry-After.
        head_timeout: Seconds a client may take to send a request's headers.
        body_timeout: Seconds a client may take to send a request's body (408).
        insecure_no_auth: Serve a non-loopback address without a key.
    """

    api_key: str | None = field(default=None, repr=False)
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 1_000_000
    max_running: int = 8
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    insecure_no_auth: bool = False

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_running"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be 1 or more, not {getattr(self, name)}")
        for name in ("head_timeout", "body_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be above 0, not {getattr(self, name)}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("the API key is empty; set a key or none at all")

    def check_bind(self, host: str) -> None:
        """Refuse to serve a non-loopback address without a key.

        Raises:
            ValueError: Saying how to add a key.
        """
        if host in LOOPBACK_HOSTS or self.api_key or self.insecure_no_auth:
            return
        raise ValueError(
            f"refusing to serve {host} without a key: anyone who reaches the port "
            "would spend the models' API keys. Give the server a key "
            "(`attention-moa serve`: set ATTENTION_MOA_API_KEY, or name another "
            "variable with --server-key-env), or waive it (--insecure-no-auth)."
        )

    def hosts(self, bound: str) -> frozenset[str] | None:
        """The names `Host` may carry (None: any)."""
        if "*" in self.allowed_hosts:
            return None
        extra = {bound} if bound not in ("0.0.0.0", "::", "") else set()
        return LOOPBACK_HOSTS | extra | {h.lower() for h in self.allowed_hosts}

    def origin_allowed(self, origin: str, bound: str, port: int) -> bool:
        """Whether a web page of `origin` may call the server at `bound`:`port`.

        An origin is its scheme, host and port: a page served from another
        port of this machine is another origin (another local web app) and is
        refused. Names given in `allowed_hosts` are trusted on any port.
        """
        if "*" in self.allowed_hosts:
            return True
        try:
            parts = urlsplit(origin)
            given = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            return False
        name = (parts.hostname or "").lower()
        if name in {h.lower() for h in self.allowed_hosts}:
            return True
        own = LOOPBACK_HOSTS | (
            {bound} if bound not in ("0.0.0.0", "::", "") else set()
        )
        return name in own and given == port
