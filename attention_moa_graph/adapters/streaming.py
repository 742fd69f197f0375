"""Stream a run: per-layer progress, then the final answer's tokens as they come.

Which call writes the final answer is known for sure only for the last layer:
its residual synthesis (or, without one, its summary). Those tokens are passed
on as they arrive, held back only while they could still spell the stop
signal. When the run ends any other way (an early stop, a stop signal at the
last layer), the answer is a summary already written, and it comes in one piece.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from attention_moa_graph._core.prompts import STOP_SIGNAL
from attention_moa_graph._core.routing import strip_decoration

_SIGNAL = strip_decoration(STOP_SIGNAL).casefold()


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


def final_call(max_layers: int, residual: bool) -> tuple[int, str]:
    """The layer and role whose reply is the answer when no early stop happens."""
    if residual and max_layers > 1:
        return max_layers, "residual"
    return max_layers, "summary"


def _could_be_signal(text: str) -> bool:
    return _SIGNAL.startswith(strip_decoration(text).casefold())


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
        if not self.sent and _could_be_signal(self.text):
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
    max_layers: int,
    residual: bool,
    context: Any = None,
) -> AsyncIterator[StreamEvent]:
    """Run the graph, yielding progress, the answer's tokens, then the result.

    Args:
        graph: A graph from `create_attention_moa`.
        payload: Its input (or None to resume a thread).
        config: The run's config.
        max_layers: The depth of this run (the built depth or the context's).
        residual: Whether the residual stage runs in this run.
        context: The run's `MoAContext`, if any.
    """
    layer, role = final_call(max_layers, residual)
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
            if (
                isinstance(chunk, AIMessageChunk)
                and metadata.get("moa_layer") == layer
                and metadata.get("moa_role") == role
            ):
                text = gate.feed(chunk.id, str(chunk.text))
                if text:
                    yield StreamEvent("token", text)
        elif mode == "values" and not namespace and isinstance(data, dict):
            result = data
    answer = str(result.get("final_answer", ""))
    ran = len(result.get("layers") or [])
    if ran > max_layers:
        raise ValueError(
            f"astream_answer was given max_layers={max_layers}, but the run went "
            f"{ran} layers deep, so the wrong call was streamed; pass the run's "
            "depth (the graph's max_layers, or the context's when it sets one)."
        )
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
