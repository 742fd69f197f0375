"""Running many calls with a limit on how many are in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


async def run_each(
    items: Sequence[T], work: Callable[[T], Awaitable[None]], concurrency: int
) -> None:
    """Await `work(item)` for every item, at most `concurrency` at a time.

    After the first failure no new item starts; the items already running
    finish (their calls are paid for, and what they save spares a rerun),
    then the first error is raised.
    """
    semaphore = asyncio.Semaphore(max(1, concurrency))
    failures: list[BaseException] = []

    async def one(item: T) -> None:
        async with semaphore:
            if failures:
                return
            try:
                await work(item)
            except Exception as error:
                failures.append(error)

    await asyncio.gather(*(one(item) for item in items))
    if failures:
        raise failures[0]
