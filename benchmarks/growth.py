"""Growth: state and checkpoint bytes per layer with long answers.

Every reply is about 2,000 words (the fake's tokens), 3 agents, 1 to 6 layers, on
AsyncSqliteSaver (the database file's size) and, where Debian's PostgreSQL
server is installed, AsyncPostgresSaver (the bytes of the thread's rows in its
three tables). A layer adds a fixed amount of state (its record), so the bytes
should grow linearly with the layers: the table shows the increment of each
extra layer.

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


def build(agents: int, layers: int, saver):
    model = ScriptedChatModel(model_name="long", reply=long_reply)
    return create_attention_moa(
        [Proposer(f"p{i}", model) for i in range(agents)],
        aggregator=model,
        max_layers=layers,
        early_stopping=False,
        checkpointer=saver,
    )


async def measure_sqlite(layers: int, agents: int) -> tuple[int, int]:
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "growth.sqlite"
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            graph = build(agents, layers, saver)
            config = {"configurable": {"thread_id": "growth"}}
            result = await graph.ainvoke({"messages": [("user", "Go long.")]}, config)
        state_bytes = len(json.dumps(result, default=str).encode())
        stored = sum(p.stat().st_size for p in Path(folder).glob("growth.sqlite*"))
    return state_bytes, stored


ROW_BYTES = """
SELECT
  (SELECT coalesce(sum(octet_length(checkpoint::text)
                       + octet_length(metadata::text)), 0)
     FROM checkpoints WHERE thread_id = %(t)s)
  + (SELECT coalesce(sum(octet_length(blob)), 0)
     FROM checkpoint_blobs WHERE thread_id = %(t)s)
  + (SELECT coalesce(sum(octet_length(blob)), 0)
     FROM checkpoint_writes WHERE thread_id = %(t)s)
"""


async def measure_postgres(dsn: str, layers: int, agents: int) -> int:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(dsn) as saver:
        await saver.setup()
        graph = build(agents, layers, saver)
        thread = f"growth-{layers}"
        config = {"configurable": {"thread_id": thread}}
        await graph.ainvoke({"messages": [("user", "Go long.")]}, config)
        async with saver.conn.cursor() as cursor:
            await cursor.execute(ROW_BYTES, {"t": thread})
            row = await cursor.fetchone()
    return int(next(iter(row.values())) if isinstance(row, dict) else row[0])


def steps(values: list[int]) -> list[str]:
    """Each value in KB with its increment over the previous one."""
    cells = [f"{values[0] / 1024:.0f}"]
    cells += [
        f"{b / 1024:.0f} (+{(b - a) / 1024:.0f})"
        for a, b in zip(values, values[1:], strict=False)
    ]
    return cells


async def main_async(agents: int) -> str:
    sqlite = [await measure_sqlite(layers, agents) for layers in range(1, 7)]
    postgres: list[int] | None = None
    try:
        from tests.postgres_server import postgres_server

        with postgres_server() as dsn:
            postgres = [
                await measure_postgres(dsn, layers, agents) for layers in range(1, 7)
            ]
    except (ImportError, RuntimeError) as exc:
        print(f"PostgreSQL column skipped: {exc}")
    states = steps([s for s, _ in sqlite])
    files = steps([f for _, f in sqlite])
    pg = steps(postgres) if postgres else ["n/a"] * 6
    rows = [
        "| layers | final state KB (+ per layer) | SQLite file KB (+ per layer) "
        "| PostgreSQL rows KB (+ per layer) |",
        "|---|---|---|---|",
    ]
    rows += [
        f"| {layers} | {states[i]} | {files[i]} | {pg[i]} |"
        for i, layers in enumerate(range(1, 7))
    ]
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
