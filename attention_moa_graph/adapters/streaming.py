"""Stream a run: per-layer progress, then the final answer as it is written.

The call whose reply is the run's answer carries `moa_final` in its metadata:
the last layer's residual synthesis, or its summary when no residual call
follows. Its text is passed on as it comes, word by word, cleaned of fence
tags and trimmed at a repetition as the stored answer is (see `guards`):
held back are only the words that may still be taken away, a sentence that
may repeat an earlier one, a run of words said again, and near the call's
token cap the sentence being written. When the run ends any other way (an
early stop, a stop signal at the last layer), the answer is a summary
already written, and it comes in one piece.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph

from attention_moa_graph._core.guards import settled
from attention_moa_graph._core.messages import (
    FENCE_TAG_LONGEST,
    quoted_tags,
    strip_fences,
)
from attention_moa_graph._core.stop import could_be_stop_signal, without_signal_lines

NEAR_CAP_TOKENS = 48
"""From this many tokens before its cap, a final call's sentence is held back
until it ends: the call may stop in it, and the answer then ends before it."""


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


def _settled(text: str) -> str:
    """The part of a reply so far that later tokens cannot change once cleaned.

    Held back: a `<` that may open a fence tag still being written, a last
    line that may be the stop signal, and the white space at the end (a tag
    after it would take it away).
    """
    # A last line that may still become the stop signal waits; signal lines go
    # (the answer never holds one: see `without_signal_lines`).
    head, _, last = text.rpartition("\n")
    if head and could_be_stop_signal(last):
        text = head
    text = without_signal_lines(text) if head else text
    cut = len(text)
    opened = text.rfind("<")
    if opened != -1 and ">" not in text[opened:] and cut - opened < FENCE_TAG_LONGEST:
        cut = opened
    return text[:cut].rstrip()


class _Gate:
    """Passes on the final call's cleaned text, minus what is not settled yet.

    A retried call streams again from its first token (a new message id); text
    already passed on is not repeated, and a retry that says something else
    is an error, since passed-on text cannot be taken back.
    """

    def __init__(self) -> None:
        self.sent = ""
        self.attempt: str | None = None
        self.text = ""
        self.chunks = 0
        self.diverged = False
        self.keep: frozenset[str] = frozenset()
        """The user's own tags (`quoted_tags`), which cleaning leaves."""

    def feed(self, attempt: str | None, text: str, cap: int | None = None) -> str:
        if attempt != self.attempt:
            self.attempt, self.text, self.chunks = attempt, "", 0
        self.text += text
        self.chunks += 1  # about a token each
        if not self.sent and could_be_stop_signal(self.text):
            return ""
        near_cap = cap is not None and self.chunks >= cap - NEAR_CAP_TOKENS
        ready = settled(strip_fences(_settled(self.text), self.keep), near_cap)
        if ready.startswith(self.sent):
            out, self.sent = ready[len(self.sent) :], ready
            return out
        if not self.sent.startswith(ready):
            self.diverged = True
        return ""

    def finish(self, answer: str) -> str:
        """The rest of the answer, once the run has its final state."""
        if self.diverged or not answer.startswith(self.sent):
            raise RuntimeError(
                "the final call was retried after part of its answer had been "
                "streamed, and the retry wrote something else; the run's "
                "`final_answer` holds the answer. Use invoke/ainvoke to avoid "
                "partial streams."
            )
        rest, self.sent = answer[len(self.sent) :], answer
        return rest


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
                cap = metadata.get("ls_max_tokens")
                text = gate.feed(chunk.id, str(chunk.text), cap)
                if text:
                    yield StreamEvent("token", text)
        elif mode == "values" and not namespace and isinstance(data, dict):
            if not result:  # the run's first state: its conversation
                gate.keep = quoted_tags(data.get("messages") or ())
            result = data
    rest = gate.finish(str(result.get("final_answer", "")))
    if rest:
        yield StreamEvent("token", rest)
    yield StreamEvent("result", result)


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """The text up to the first stop sequence (OpenAI's `stop`), if any occurs."""
    cuts = [text.find(s) for s in stop or () if s and s in text]
    return text[: min(cuts)] if cuts else text


class StopGate:
    """Passes streamed text on until a stop sequence; holds back a partial one."""

    def __init__(self, stop: list[str] | None) -> None:
        """A gate for `stop` (None or empty: pass everything)."""
        self.stop = [s for s in stop or () if s]
        self.text = ""
        self.sent = 0
        self.done = False

    def feed(self, text: str) -> str:
        """What of the text so far, `text` added, may be passed on now."""
        if self.done:
            return ""
        self.text += text
        cut = cut_at_stop(self.text, self.stop)
        if len(cut) < len(self.text):
            self.done = True
            end = len(cut)
        else:
            # Keep back an ending that may grow into a stop sequence.
            held = max(
                (
                    k
                    for s in self.stop
                    for k in range(1, len(s))
                    if self.text.endswith(s[:k])
                ),
                default=0,
            )
            end = len(self.text) - held
        out, self.sent = self.text[self.sent : end], max(self.sent, end)
        return out

    def finish(self) -> str:
        """The rest, at the end of the stream."""
        if self.done:
            return ""
        out, self.sent = self.text[self.sent :], len(self.text)
        return out
