"""The compiled graph: LangGraph's, with its input checked before a run starts.

LangGraph maps a run's input onto the state channels itself; input that is not
a mapping (`graph.invoke("hi")`) fails there with an `InvalidUpdateError` that
names neither the expected shape nor the fix.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, TypeVar

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from attention_moa_graph._calls.errors import MoAInputError


def check_input(payload: Any) -> None:
    """Raise `MoAInputError` unless `payload` is a run's input (or a resume)."""
    if payload is None or isinstance(payload, (Mapping, Command)):
        return
    shown = repr(payload)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise MoAInputError(
        f"the graph's input is a dict such as {{'messages': [('user', 'Hi')]}} "
        f"(None resumes a thread), not {type(payload).__name__} {shown}: "
        "wrap the question, e.g. graph.invoke({'messages': [('user', question)]})."
    )


class CheckedGraph(CompiledStateGraph[Any, Any, Any, Any]):
    """A compiled graph whose runs check their input first (see `check_input`).

    `invoke` and `ainvoke` go through `stream` and `astream`, so these two
    are the only doors.
    """

    def stream(self, input: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        check_input(input)
        return super().stream(input, *args, **kwargs)

    def astream(self, input: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        check_input(input)
        return super().astream(input, *args, **kwargs)


Graph = TypeVar("Graph", bound=CompiledStateGraph[Any, Any, Any, Any])


def checked(compiled: Graph) -> Graph:
    """`compiled` as a `CheckedGraph` (the same object, its class swapped)."""
    # Swapped in place rather than built anew: compile() makes the instance.
    compiled.__class__ = CheckedGraph  # type: ignore[assignment]
    return compiled
