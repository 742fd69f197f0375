"""Growth: state and checkpoint bytes per layer with long answers.

Every reply is about 2,000 words (the fake's tokens), 3 agents, 1 to 6 layers, on
AsyncSqliteSaver. A layer adds a fixed amount of state (its record), so the
bytes should grow linearly with the layers: the table shows the increment of
each extra layer.

Run: python -m benchmarks.growth
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import tempfile
from pathlib import Path

from attention_moa_graph import Proposer, create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel
from benchmarks.common import record


def long_reply(messages) -> str:
    seed = hashlib.sha256("".join(str(m.text) for m in messages).encode()).hexdigest()
    return " ".join(f"w{seed[i % 64]}{i}" for i in range(2000))


async def measure(layers: int, agents: int) -> tuple[int, int]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    model = ScriptedChatModel(model_name="long", reply=long_reply)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "growth.sqlite"
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            graph = create_attention_moa(
                [Proposer(f"p{i}", model) for i in range(agents)],
                aggregator=model,
                max_layers=layers,
                early_stopping=False,
                checkpointer=saver,
            )
            config = {"configurable": {"thread_id": "growth"}}
            result = await graph.ainvoke({"messages": [("user", "Go long.")]}, config)
        state_bytes = len(json.dumps(result, default=str).encode())
        stored = sum(p.stat().st_size for p in Path(folder).glob("growth.sqlite*"))
    return state_bytes, stored


async def main_async(agents: int) -> str:
    rows = [
        "| layers | final state KB | + per extra layer | checkpoint DB KB "
        "| + per extra layer |",
        "|---|---|---|---|---|",
    ]
    previous: tuple[int, int] | None = None
    for layers in range(1, 7):
        state, stored = await measure(layers, agents)
        if previous is None:
            steps = ("", "")
        else:
            steps = (
                f"{(state - previous[0]) / 1024:.0f}",
                f"{(stored - previous[1]) / 1024:.0f}",
            )
        rows.append(
            f"| {layers} | {state / 1024:.0f} | {steps[0]} | {stored / 1024:.0f} "
            f"| {steps[1]} |"
        )
        previous = (state, stored)
    return f"{agents} agents, replies of 2,000 words.\n\n" + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=3)
    args = parser.parse_args()
    table = asyncio.run(main_async(args.agents))
    record(
        "State and checkpoint growth per layer", "python -m benchmarks.growth", table
    )


if __name__ == "__main__":
    main()
