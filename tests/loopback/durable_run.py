"""Start or resume one thread in a process of its own, for the crash tests.

Usage: python -m tests.loopback.durable_run BASE_URL THREAD (--sqlite PATH |
--postgres DSN) [--resume]. Prints the result as JSON on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from contextlib import AbstractAsyncContextManager
from typing import Any

from attention_moa_graph import Proposer, create_attention_moa
from tests.helpers import fast_retries, openai_model

QUESTION = "Why do leaves change colour in autumn?"
NAMES = ("a", "b", "c")


def build(base_url: str, checkpointer: Any):
    return create_attention_moa(
        [Proposer(n, openai_model(base_url, n)) for n in NAMES],
        aggregator=openai_model(base_url, "agg"),
        max_layers=3,
        early_stopping=False,
        retry_policy=fast_retries(),
        checkpointer=checkpointer,
    )


def saver(args: argparse.Namespace) -> AbstractAsyncContextManager[Any]:
    if args.sqlite:
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        return AsyncSqliteSaver.from_conn_string(args.sqlite)
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    return AsyncPostgresSaver.from_conn_string(args.postgres)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("thread")
    parser.add_argument("--sqlite")
    parser.add_argument("--postgres")
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    async with saver(args) as checkpointer:
        if args.postgres:
            await checkpointer.setup()
        graph = build(args.base_url, checkpointer)
        config = {"configurable": {"thread_id": args.thread}}
        payload = None if args.resume else {"messages": [("user", QUESTION)]}
        result = await graph.ainvoke(payload, config)
    print(
        json.dumps(
            {
                "final_answer": result["final_answer"],
                "layers": len(result["layers"]),
                "calls": result["usage"]["total"]["calls"],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
