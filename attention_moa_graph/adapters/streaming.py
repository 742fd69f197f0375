"""Stream a run: per-layer progress, then the final answer's tokens as they come.

The call whose reply is the run's answer carries `moa_final` in its metadata:
the last layer's residual synthesis, or its summary when no residual call
follows. Its tokens are passed on as they arrive, held back only while they
could still spell the stop signal. When the run ends any other way (an early
stop, a stop signal at the last layer), the answer is a summary already
written, and it comes in one piece.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from attention_moa_graph._core.stop import could_be_stop_signal


@dataclass(frozen=True)
class StreamEvent:
    """One item of an answer stream.

    Attributes:
        kind: `progress` (a layer/stage event), `token` (text of the final
            answer) or `result` (the run's final output state, last).
        data: The progress event, the token text, or the output state.
    """

    kind: Literal["progress", "token", "result"]
    data: Any


class _Gate:
    """Passes on the final call's text, minus what could still be the stop signal.

    A retried call streams again from its first token (a new message id); text
    already passed on is not repeated, and a retry that says something else
    is an error, since passed-on text cannot be taken back.
    """

    def __init__(self) -> None:
        self.sent = ""
        self.attempt: str | None = None
        self.text = ""
        self.diverged = False

    def feed(self, attempt: str | None, text: str) -> str:
        if attempt != self.attempt:
            self.attempt, self.text = attempt, ""
        self.text += text
        if not self.sent and could_be_stop_signal(self.text):
            return ""
        if self.text.startswith(self.sent):
            out, self.sent = self.text[len(self.sent) :], self.text
            return out
        if not self.sent.startswith(self.text):
            self.diverged = True
        return ""


async def astream_answer(
    graph: CompiledStateGraph[Any, Any, Any, Any],
    payload: Any,
    config: RunnableConfig | None = None,
    *,
    context: Any = None,
) -> AsyncIterator[StreamEvent]:
    """Run the graph, yielding progress, the answer's tokens, then the result.

    Args:
        graph: A graph from `create_attention_moa`.
        payload: Its input (or None to resume a thread).
        config: The run's config.
        context: The run's `MoAContext` (or dict), if any.

    Example:
        >>> import asyncio
        >>> from attention_moa_graph import astream_answer, create_attention_moa
        >>> graph = create_attention_moa(
        ...     ["demo:a", "demo:b"], aggregator="demo:chair", max_layers=1
        ... )
        >>> async def answer():
        ...     events = astream_answer(graph, {"messages": [("user", "Hi")]})
        ...     return "".join([e.data async for e in events if e.kind == "token"])
        >>> asyncio.run(answer()).startswith("[demo] Chair's summary")
        True
    """
    gate = _Gate()
    result: dict[str, Any] = {}
    async for namespace, mode, data in graph.astream(
        payload,
        config,
        context=context,
        stream_mode=["custom", "messages", "values"],
        subgraphs=True,
    ):
        if mode == "custom":
            yield StreamEvent("progress", data)
        elif mode == "messages" and isinstance(data, tuple):
            chunk, metadata = data
            if isinstance(chunk, AIMessageChunk) and metadata.get("moa_final"):
                text = gate.feed(chunk.id, str(chunk.text))
                if text:
                    yield StreamEvent("token", text)
        elif mode == "values" and not namespace and isinstance(data, dict):
            result = data
    answer = str(result.get("final_answer", ""))
    if not gate.sent:
        if answer:
            yield StreamEvent("token", answer)
    elif gate.diverged or gate.sent != answer:
        raise RuntimeError(
            "the final call was retried after part of its answer had been streamed, "
            "and the retry wrote something else; the run's `final_answer` holds "
            "the answer. Use invoke/ainvoke to avoid partial streams."
        )
    yield StreamEvent("result", result)
