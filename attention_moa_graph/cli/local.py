"""`attention-moa local install|status`: the local model runtime."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape


def run_local(args: argparse.Namespace) -> int:
    """Install or report the local runtime; returns the exit status."""
    from attention_moa_graph.local import LocalRuntimeError
    from attention_moa_graph.local.install import check, install, status

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if args.step == "status":
        print(status())
        return 0
    if args.check:
        print("\n".join(check(build=args.build, force=args.force)))
        return 0
    try:
        install(
            build=args.build,
            force=args.force,
            say=lambda line: console.print(escape(line)),
        )
    except LocalRuntimeError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    return 0
