"""`attention-moa serve`: the ensemble as an OpenAI-compatible endpoint."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

from attention_moa_graph.cli.ensemble import build_graph, lineup_from


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit status."""
    from attention_moa_graph.adapters.serve import ChatCompletionsServer

    console = Console(highlight=False)
    try:
        lineup = lineup_from(args)
        graph = build_graph(args, lineup, name=args.model_name)
        server = ChatCompletionsServer(
            graph,
            model_name=args.model_name,
            host=args.host,
            port=args.port,
        )
    except (ValueError, OSError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        return 2
    if lineup.notice:
        console.print(f"[cyan]{escape(lineup.notice)}[/cyan]")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]Listening on {args.host}: the endpoint has no authentication."
            "[/yellow]"
        )
    console.print(
        f"Serving model {args.model_name!r} at {server.base_url} "
        "(POST /chat/completions). Ctrl-C stops."
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    return 0
