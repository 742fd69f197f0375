"""`AttentionMoAChatModel`: the ensemble as a LangChain chat model.

Drop it in wherever a chat model goes (`prompt | model | StrOutputParser()`,
agents, `batch`, `astream`): it runs the whole Attention-MoA graph per call
and answers with the final answer.

Example:
    >>> from attention_moa_graph import AttentionMoAChatModel
    >>> model = AttentionMoAChatModel(
    ...     proposers=["demo:alpha", "demo:beta"], aggregator="demo:chair", max_layers=1
    ... )
    >>> model.invoke("Why is the sky blue?").content.startswith("[demo]")
    True
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.language_models.chat_models import (
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from pydantic import ConfigDict, Field, PrivateAttr

from attention_moa_graph._calls.models import ModelLike, Proposer
from attention_moa_graph._core.graph import DEFAULT_RETRY_POLICY, create_attention_moa
from attention_moa_graph._core.prompts import DEFAULT_PROMPTS, MoAPrompts
from attention_moa_graph._core.state import Role
from attention_moa_graph.adapters.streaming import astream_answer


def _children_of(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> CallbackManager | None:
    """Callbacks that nest the graph's runs under this model's run in traces."""
    if run_manager is None:
        return None
    return CallbackManager(
        handlers=list(run_manager.inheritable_handlers),
        inheritable_handlers=list(run_manager.inheritable_handlers),
        parent_run_id=run_manager.run_id,
        tags=list(run_manager.inheritable_tags),
        inheritable_tags=list(run_manager.inheritable_tags),
        metadata=dict(run_manager.inheritable_metadata),
        inheritable_metadata=dict(run_manager.inheritable_metadata),
    )


class AttentionMoAChatModel(BaseChatModel):
    """Attention-MoA behind the `BaseChatModel` interface.

    Takes the arguments of `create_attention_moa` as fields, plus LangChain's
    standard chat-model parameters: `temperature` (every call), `timeout`
    (each model call), `max_retries` (retries per call on transient failures).
    `max_tokens` and `stop` are accepted for compatibility and reported in
    traces, but not applied: the ensemble's answer is the aggregator's.

    The reply's `usage_metadata` totals every call of the ensemble, and
    `response_metadata` holds `stop_reason`, `layers` (how many ran) and the
    usage report by role and agent.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    proposers: Sequence[ModelLike | Proposer]
    aggregator: ModelLike | Proposer
    max_layers: int = 3
    early_stopping: bool = True
    cross_attention: bool = True
    self_attention: bool = True
    residual: bool = True
    residual_model: ModelLike | Proposer | None = None
    prompts: MoAPrompts = DEFAULT_PROMPTS
    temperatures: Mapping[Role, float] | None = None
    min_agents: int = 1
    hedge_after: float | None = None
    critique_deadline: float | None = None
    stage_deadline: float | None = None
    max_concurrent_calls: int | None = None
    critique_mode: Literal["pairwise", "batched"] = "pairwise"
    model_name: str = Field(default="attention-moa", alias="model")
    """The name this model reports in traces."""
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = 120.0
    max_retries: int | None = None
    stop: list[str] | None = None
    streaming: bool = False

    _graph: CompiledStateGraph[Any, Any, Any, Any] = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        """Build (and so validate) the graph once."""
        attempts = DEFAULT_RETRY_POLICY.max_attempts
        if self.max_retries is not None:
            attempts = max(1, self.max_retries + 1)
        self._graph = create_attention_moa(
            list(self.proposers),
            aggregator=self.aggregator,
            max_layers=self.max_layers,
            early_stopping=self.early_stopping,
            cross_attention=self.cross_attention,
            self_attention=self.self_attention,
            residual=self.residual,
            residual_model=self.residual_model,
            prompts=self.prompts,
            temperature=self.temperature,
            temperatures=self.temperatures,
            call_timeout=self.timeout,
            hedge_after=self.hedge_after,
            critique_deadline=self.critique_deadline,
            stage_deadline=self.stage_deadline,
            max_concurrent_calls=self.max_concurrent_calls,
            critique_mode=self.critique_mode,
            retry_policy=DEFAULT_RETRY_POLICY._replace(max_attempts=attempts),
            min_agents=self.min_agents,
            name=self.model_name,
        )

    @property
    def graph(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The compiled graph this model runs."""
        return self._graph

    @property
    def _llm_type(self) -> str:
        return "attention-moa"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "max_layers": self.max_layers,
            "early_stopping": self.early_stopping,
            "cross_attention": self.cross_attention,
            "self_attention": self.self_attention,
            "residual": self.residual,
        }

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="attention-moa",
            ls_model_name=kwargs.get("model", self.model_name),
            ls_model_type="chat",
        )
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def _message(self, result: Mapping[str, Any]) -> AIMessage:
        usage = result["usage"]
        return AIMessage(
            content=result["final_answer"],
            usage_metadata=UsageMetadata(
                input_tokens=usage["total"]["input_tokens"],
                output_tokens=usage["total"]["output_tokens"],
                total_tokens=usage["total"]["total_tokens"],
            ),
            response_metadata={
                "model_name": self.model_name,
                "model_provider": "attention-moa",
                "stop_reason": result["stop_reason"],
                "layers": len(result["layers"]),
                "usage": usage,
            },
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return generate_from_stream(
                self._stream(messages, stop, run_manager, **kwargs)
            )
        config: RunnableConfig = {"callbacks": _children_of(run_manager)}
        result = self._graph.invoke({"messages": messages}, config)
        return ChatResult(generations=[ChatGeneration(message=self._message(result))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            return await agenerate_from_stream(
                self._astream(messages, stop, run_manager, **kwargs)
            )
        config: RunnableConfig = {"callbacks": _children_of(run_manager)}
        result = await self._graph.ainvoke({"messages": messages}, config)
        return ChatResult(generations=[ChatGeneration(message=self._message(result))])

    async def _chunks(
        self, messages: list[BaseMessage], callbacks: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        config: RunnableConfig = {"callbacks": callbacks}
        async for event in astream_answer(
            self._graph,
            {"messages": messages},
            config,
            max_layers=self.max_layers,
            residual=self.residual,
        ):
            if event.kind == "token":
                yield ChatGenerationChunk(message=AIMessageChunk(content=event.data))
            elif event.kind == "result":
                final = self._message(event.data)
                yield ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        usage_metadata=final.usage_metadata,
                        response_metadata=final.response_metadata,
                        chunk_position="last",
                    )
                )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        callbacks = _children_of(run_manager)
        async for chunk in self._chunks(messages, callbacks):
            if run_manager and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # The graph streams on its async path. It runs on an event loop in a
        # thread of its own, so this also works where a loop is already running
        # (a notebook, an async server calling sync code).
        callbacks = _children_of(run_manager)
        items: queue.Queue[tuple[str, Any]] = queue.Queue()

        async def pump() -> None:
            try:
                async for chunk in self._chunks(messages, callbacks):
                    items.put(("chunk", chunk))
            except BaseException as error:  # handed to the caller's thread
                items.put(("error", error))
            else:
                items.put(("end", None))

        thread = threading.Thread(target=asyncio.run, args=(pump(),), daemon=True)
        thread.start()
        while True:
            kind, value = items.get()
            if kind == "error":
                thread.join()
                raise value
            if kind == "end":
                thread.join()
                return
            if run_manager and value.text:
                run_manager.on_llm_new_token(value.text, chunk=value)
            yield value
