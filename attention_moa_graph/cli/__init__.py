"""The `attention-moa` command line: `ask` a question, or `serve` the ensemble.

Example:
    attention-moa ask "Why is the sky blue?"            # offline demo models
    attention-moa ask "..." -p openai:gpt-4.1-mini -p anthropic:claude-sonnet-4-5 \
        -a openai:gpt-4.1
    attention-moa serve -p openai:gpt-4.1-mini -p openai:gpt-4.1-nano
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

from attention_moa_graph._extras import MissingExtraError, require

GC_THRESHOLD = 10_000
"""The command line's first-generation garbage-collector threshold (Python: 700).

A model call allocates thousands of objects (SDK, HTTP, messages), so at 700
the collector runs several times a call and walks the runs in flight each
time. At 10,000 one client process went from 0.79-0.84 to 0.92 of the
throughput bound (`benchmarks/throughput.py --gc-threshold`). The setting is
process-wide, so the package makes it only in the processes it owns (the
`attention-moa` command, `python -m attention_moa_graph.cli`); an application
embedding the graph may make the same choice.
"""


def run() -> int:
    """The `attention-moa` command, in a process of its own: tune GC, then `main`."""
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    return main()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Without the `cli` extra it says, in one line, what to install.
    """
    try:
        require(
            "cli",
            "rich",
            "langgraph.checkpoint.sqlite",
            what="the attention-moa command",
        )
    except MissingExtraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from attention_moa_graph.cli.commands import dispatch

    return dispatch(argv)
