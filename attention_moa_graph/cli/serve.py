"""`attention-moa serve`: the ensemble as an OpenAI-compatible endpoint."""

from __future__ import annotations

import argparse
import logging

from rich.console import Console
from rich.markup import escape

from attention_moa_graph._calls.errors import secret_from
from attention_moa_graph._extras import MissingExtraError, require
from attention_moa_graph.adapters.server import ServeLimits
from attention_moa_graph.cli.ensemble import build_graph, lineup_from

KEY_VARIABLE = "ATTENTION_MOA_API_KEY"


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is no port: give 1 to 65535 (0: any free port)"
        )
    return value


def add_serve_arguments(serve: argparse.ArgumentParser) -> None:
    """The flags of `serve`: where it listens and what clients may do."""
    defaults = ServeLimits()
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)"
    )
    serve.add_argument(
        "--port", type=_port, default=8000, help="default: 8000; 0: any free port"
    )
    serve.add_argument(
        "--model-name",
        default="attention-moa",
        help="the model id clients see and must ask for (default: attention-moa)",
    )
    serve.add_argument(
        "--server-key-env",
        metavar="NAME",
        default=KEY_VARIABLE,
        help="environment variable holding the key clients must send as "
        f"'Authorization: Bearer KEY' (default: {KEY_VARIABLE}; unset: no key)",
    )
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve a non-loopback address without a key",
    )
    serve.add_argument(
        "--allowed-host",
        metavar="NAME",
        action="append",
        default=[],
        help="a host name clients may use in Host and Origin, beside the loopback "
        "names and the bound address (repeatable; '*' for any)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=defaults.max_body_bytes,
        help=f"largest request body (default: {defaults.max_body_bytes:,})",
    )
    serve.add_argument(
        "--max-running",
        type=int,
        default=defaults.max_running,
        help="most requests answered at once; more get 503 with Retry-After "
        f"(default: {defaults.max_running})",
    )
    serve.add_argument(
        "--head-timeout",
        type=float,
        default=defaults.head_timeout,
        help="seconds a client may take to send a request's headers "
        f"(default: {defaults.head_timeout:g})",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        default=defaults.body_timeout,
        help="seconds a client may take to send a request's body "
        f"(default: {defaults.body_timeout:g})",
    )


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit status."""
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        require("serve", "starlette", "uvicorn", what="attention-moa serve")
    except MissingExtraError as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}")
        return 1
    from attention_moa_graph.adapters.server import ChatCompletionsServer

    key = secret_from(args.server_key_env)
    try:
        limits = ServeLimits(
            api_key=key,
            allowed_hosts=tuple(args.allowed_host),
            max_body_bytes=args.max_body_bytes,
            max_running=args.max_running,
            head_timeout=args.head_timeout,
            body_timeout=args.body_timeout,
            insecure_no_auth=args.insecure_no_auth,
        )
        lineup = lineup_from(args)
        graph = build_graph(args, lineup, name=args.model_name)
        server = ChatCompletionsServer(
            graph,
            model_name=args.model_name,
            host=args.host,
            port=args.port,
            limits=limits,
        )
    except (ValueError, OSError) as exc:
        said = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        errors.print(f"[red]error:[/red] {escape(said)}")
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if lineup.notice:
        console.print(f"[cyan]{escape(lineup.notice)}[/cyan]")
    access = (
        f"clients must send the key in ${args.server_key_env}"
        if key
        else f"no key (set ${args.server_key_env} to require one)"
    )
    if not key and args.insecure_no_auth:
        console.print(
            f"[yellow]Listening on {escape(args.host)} with no key: anyone who "
            "reaches the port can use the models.[/yellow]"
        )
    console.print(
        f"Serving model {escape(repr(args.model_name))} at {server.base_url} "
        f"(POST /chat/completions); {access}. Ctrl-C stops."
    )
    server.serve_forever()
    return 0
