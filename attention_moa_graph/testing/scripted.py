"""`ScriptedChatModel`: a deterministic fake chat model for tests and demos.

It answers with `reply(messages)`, a function of the prompt only, never of
call order: that keeps it correct under LangGraph's parallel `Send` fan-out,
where the order of calls is not fixed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import ToolCall, ToolCallChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr

ReplyFn = Callable[[Sequence[BaseMessage]], "str | AIMessage"]
"""Maps the prompt's messages to the reply: its text, or an `AIMessage` (for
tool calls). Must not depend on call order."""


@dataclass(frozen=True)
class ScriptedCall:
    """One recorded call: the prompt and the run metadata it carried."""

    messages: tuple[BaseMessage, ...]
    metadata: dict[str, Any]
    reply: str
    tools: tuple[str, ...] = ()
    """Names of the tools the call was bound to (`bind_tools`)."""
    tool_choice: Any = None
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def prompt(self) -> str:
        """All message texts joined, for `in` checks in tests."""
        return "\n".join(m.text for m in self.messages)


def count_tokens(text: str) -> int:
    """Count whitespace-separated words: the fake's notion of a token."""
    return len(text.split())


def _default_reply(name: str) -> ReplyFn:
    def reply(messages: Sequence[BaseMessage]) -> str:
        digest = hashlib.sha256(
            "\n".join(f"{m.type}:{m.text}" for m in messages).encode()
        ).hexdigest()[:8]
        return f"{name} reply {digest}"

    return reply


class ScriptedChatModel(BaseChatModel):
    """Chat model whose reply is a pure function of its input messages.

    Attributes:
        reply: The function from messages to reply text. Defaults to a short text
            naming the model plus a hash of the prompt.
        model_name: Reported in `response_metadata["model_name"]` (the key
            LangChain's usage callback counts by).
        latency: Seconds to wait before answering (`asyncio.sleep` on the async
            path, so parallel calls overlap), or a function of the input
            messages giving them (a slow stage, a straggling agent).
        chunk_size: Words per chunk when streaming.
        calls: The calls made, with their prompts and `moa_*` run metadata:
            every call, or the latest `keep_calls` of them.
        keep_calls: How many calls to remember (None: all of them); a model
            that serves for long keeps its memory bounded with a number.
        peak_in_flight: The largest number of calls that were running at once.
    """

    reply: ReplyFn | None = None
    model_name: str = "scripted"
    latency: float | Callable[[Sequence[BaseMessage]], float] = 0.0
    chunk_size: int = 1
    keep_calls: int | None = None

    _calls: deque[ScriptedCall] = PrivateAttr()
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _in_flight: int = PrivateAttr(default=0)
    _peak: int = PrivateAttr(default=0)

    def model_post_init(self, context: Any, /) -> None:
        """Start the call record, bounded by `keep_calls`."""
        self._calls = deque(maxlen=self.keep_calls)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    @property
    def calls(self) -> list[ScriptedCall]:
        """A copy of the calls recorded so far."""
        with self._lock:
            return list(self._calls)

    @property
    def peak_in_flight(self) -> int:
        """The largest number of calls that were in progress at the same time."""
        return self._peak

    def reset(self) -> None:
        """Forget recorded calls and the in-flight peak."""
        with self._lock:
            self._calls.clear()
            self._peak = self._in_flight

    def bind_tools(
        self,
        tools: Sequence[Any],
        *,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools as OpenAI schemas; the reply function decides the calls."""
        schemas = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=schemas, tool_choice=tool_choice, **kwargs)

    def _answer(
        self,
        messages: list[BaseMessage],
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
        kwargs: dict[str, Any] | None = None,
    ) -> tuple[str, UsageMetadata, list[ToolCall], str]:
        answer = (self.reply or _default_reply(self.model_name))(messages)
        text = answer if isinstance(answer, str) else str(answer.text)
        calls = [] if isinstance(answer, str) else list(answer.tool_calls)
        # Like a real model, a reply ends before its first stop sequence...
        stops = (kwargs or {}).get("stop") or ()
        cuts = [text.find(s) for s in stops if s and s in text]
        text = text[: min(cuts)] if cuts else text
        # ... and a reply longer than its cap stops at the cap.
        cap = (kwargs or {}).get("max_tokens")
        finish = "stop"
        if isinstance(cap, int) and count_tokens(text) > cap:
            text, finish = " ".join(text.split()[:cap]), "length"
        bound = (kwargs or {}).get("tools") or []
        metadata = dict(run_manager.metadata) if run_manager else {}
        prompt_tokens = sum(count_tokens(m.text) for m in messages)
        output_tokens = count_tokens(text)
        usage = UsageMetadata(
            input_tokens=prompt_tokens,
            output_tokens=output_tokens,
            total_tokens=prompt_tokens + output_tokens,
        )
        record = ScriptedCall(
            tuple(messages),
            metadata,
            text,
            tools=tuple(t["function"]["name"] for t in bound),
            tool_choice=(kwargs or {}).get("tool_choice"),
            tool_calls=tuple(calls),
        )
        with self._lock:
            self._calls.append(record)
        return text, usage, calls, finish

    def _delay(self, messages: Sequence[BaseMessage]) -> float:
        latency = self.latency
        return float(latency(messages) if callable(latency) else latency)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._peak = max(self._peak, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _message(
        self, text: str, usage: UsageMetadata, calls: list[ToolCall], finish: str
    ) -> AIMessage:
        return AIMessage(
            content=text,
            tool_calls=calls,
            usage_metadata=usage,
            response_metadata={
                "model_name": self.model_name,
                "model_provider": "scripted",
                "finish_reason": finish,
            },
        )

    def _chunks(
        self, text: str, usage: UsageMetadata, calls: list[ToolCall], finish: str
    ) -> Iterator[ChatGenerationChunk]:
        words = text.split(" ")
        step = max(1, self.chunk_size)
        pieces = [" ".join(words[i : i + step]) for i in range(0, len(words), step)]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content=piece if index == 0 else " " + piece,
                    tool_call_chunks=[
                        ToolCallChunk(
                            name=call["name"],
                            args=json.dumps(call["args"]),
                            id=call["id"],
                            index=number,
                        )
                        for number, call in enumerate(calls)
                    ]
                    if last
                    else [],
                    usage_metadata=usage if last else None,
                    response_metadata=(
                        {
                            "model_name": self.model_name,
                            "model_provider": "scripted",
                            "finish_reason": finish,
                        }
                        if last
                        else {}
                    ),
                    chunk_position="last" if last else None,
                )
            )

    def _answer_now(
        self,
        messages: list[BaseMessage],
        run_manager: CallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> tuple[str, UsageMetadata, list[ToolCall], str]:
        self._enter()
        try:
            delay = self._delay(messages)
            if delay:
                time.sleep(delay)
            return self._answer(messages, run_manager, kwargs)
        finally:
            self._leave()

    async def _answer_later(
        self,
        messages: list[BaseMessage],
        run_manager: AsyncCallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> tuple[str, UsageMetadata, list[ToolCall], str]:
        self._enter()
        try:
            delay = self._delay(messages)
            if delay:
                await asyncio.sleep(delay)
            return self._answer(messages, run_manager, kwargs)
        finally:
            self._leave()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._answer_now(messages, run_manager, {**kwargs, "stop": stop})
        return ChatResult(generations=[ChatGeneration(message=self._message(*reply))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = await self._answer_later(
            messages, run_manager, {**kwargs, "stop": stop}
        )
        return ChatResult(generations=[ChatGeneration(message=self._message(*reply))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._answer_now(messages, run_manager, {**kwargs, "stop": stop})
        for chunk in self._chunks(*reply):
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = await self._answer_later(
            messages, run_manager, {**kwargs, "stop": stop}
        )
        for chunk in self._chunks(*reply):
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
