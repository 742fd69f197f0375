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

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import (
    BaseChatModel,
    LangSmithParams,
    LanguageModelInput,
)
from langchain_core.language_models.chat_models import (
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import ToolCallChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph.state import CompiledStateGraph
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from attention_moa_graph._calls.loop import iterate_sync, run_sync
from attention_moa_graph._calls.models import ModelLike, Proposer, resolve_single
from attention_moa_graph._calls.policy import with_attempts
from attention_moa_graph._core.graph import create_attention_moa
from attention_moa_graph._core.options import MoAOptions
from attention_moa_graph._core.tools import check_tool_choice, tool_names, tool_schemas
from attention_moa_graph.adapters._leaf import children_of, detached, prepend
from attention_moa_graph.adapters.streaming import StopGate, astream_answer, cut_at_stop
from attention_moa_graph.adapters.structured import Method, structured_runnable

_OPTION_NAMES = frozenset(s.name for s in MoAOptions.settings()) | set(
    MoAOptions.groups()
)


class AttentionMoAChatModel(BaseChatModel):
    """Attention-MoA behind the `BaseChatModel` interface.

    Takes the models of `create_attention_moa` as fields, and every option of
    `MoAOptions` by name (or an `options` object), plus LangChain's standard
    parameters: `temperature` and `max_tokens` are options already; `timeout`
    sets `call_timeout` (per model call) and `max_retries` the retries per
    call. Options a run may override can also be given per call, e.g.
    `model.invoke(messages, max_tokens=256)` or `model.bind(temperature=0)`.
    `stop` (a list of sequences, here or per call) ends the answer before the
    first of them, as OpenAI does; the ensemble's own calls are not cut.
    `api_key` is accepted and unused (each model of the ensemble has its own).

    The reply's `usage_metadata` totals every call of the ensemble, and
    `response_metadata` holds `stop_reason`, `layers` (how many ran) and the
    usage report by role and agent.
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True, populate_by_name=True, extra="forbid"
    )

    proposers: Sequence[ModelLike | Proposer]
    aggregator: ModelLike | Proposer
    residual_model: ModelLike | Proposer | None = None
    options: MoAOptions = Field(default_factory=MoAOptions)
    """Every option of the ensemble; keywords of the same names fill it."""
    model_name: str = Field(default="attention-moa", alias="model")
    """The name this model reports in traces."""
    stop: list[str] | None = None
    streaming: bool = False

    _graph: CompiledStateGraph[Any, Any, Any, Any] = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _gather_options(cls, values: Any) -> Any:
        """Fold option keywords (and `timeout`, `max_retries`) into `options`."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        # A standard parameter with nothing to set: each model has its own key.
        values.pop("api_key", None)
        chosen = {n: values.pop(n) for n in list(values) if n in _OPTION_NAMES}
        timeout = values.pop("timeout", None)
        if timeout is not None:
            chosen["call_timeout"] = timeout
        retries = values.pop("max_retries", None)
        if retries is not None:
            chosen["retry_policy"] = with_attempts(int(retries) + 1)
        values["options"] = MoAOptions.build(
            values.get("options"), where="AttentionMoAChatModel()", **chosen
        )
        return values

    def model_post_init(self, context: Any, /) -> None:
        """Build (and so validate) the graph once."""
        self._graph = create_attention_moa(
            list(self.proposers),
            aggregator=self.aggregator,
            residual_model=self.residual_model,
            options=self.options,
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
        answering = {
            name: value
            for name, value in self.options.changed().items()
            if MoAOptions.setting(name).knob.answers
        }
        return {"model_name": self.model_name, **answering}

    def _get_ls_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="attention-moa",
            ls_model_name=kwargs.get("model", self.model_name),
            ls_model_type="chat",
        )
        run = self._run_options(kwargs)
        temperature = run.get("temperature", self.options.sampling.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = run.get("max_tokens", self.options.sampling.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """The ensemble with tools it may call: its answers carry `tool_calls`.

        Proposers propose calls in text with their reasons, critics judge
        them, and the summary and residual agents, bound to the tools, make
        the calls the layer agreed on (see the README's "Tools"). `tool_choice`
        is `auto`, `none`, `required` (or `any`, True) or a tool's name.

        Raises:
            ValueError: If a tool cannot be converted or the choice names no tool.
        """
        schemas = tool_schemas(tools, where="bind_tools")
        choice = check_tool_choice(tool_choice, tool_names(schemas), where="bind_tools")
        return self.bind(tools=schemas, tool_choice=choice, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        method: Method = "function_calling",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, Any]:
        """The ensemble answering with values of `schema` (pydantic, TypedDict, dict).

        `function_calling` binds the schema as the tool the answer must call;
        `json_schema` and `json_mode` have the summary and residual agents reply
        in JSON. An answer that does not validate goes back once, with the
        error, to the aggregator model; a second failure raises
        `OutputParserException` (with `include_raw`, it is the
        `parsing_error`).
        """
        if kwargs:
            raise ValueError(
                f"with_structured_output got unknown arguments {sorted(kwargs)}."
            )
        return structured_runnable(
            self,
            schema,
            method=method,
            include_raw=include_raw,
            strict=strict,
            repair_model=self._aggregator_model,
        )

    def _aggregator_model(self) -> BaseChatModel:
        agent = resolve_single(self.aggregator, "aggregator", "aggregator")
        return agent.model.get()

    @staticmethod
    def _run_options(kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The options a call sets through its keyword arguments (its context).

        Bound tools (`bind_tools`), their choice and a `response_format` go to
        the run's context too, and `model` (LangChain's per-call model
        override) chooses the aggregator: the model that writes the answer.

        Raises:
            ValueError: For an option a run cannot override.
        """
        chosen: dict[str, Any] = {
            name: kwargs[name]
            for name in ("tools", "tool_choice", "response_format")
            if kwargs.get(name) is not None
        }
        if kwargs.get("model"):
            chosen["aggregator_model"] = kwargs["model"]
        for name, value in kwargs.items():
            if name not in _OPTION_NAMES:
                continue
            if name in MoAOptions.groups() or MoAOptions.setting(name).knob.run is None:
                raise ValueError(
                    f"`{name}` cannot change per call; set it when building the "
                    f"model: AttentionMoAChatModel(..., {name}=...)."
                )
            chosen[name] = value
        return chosen

    def _config(
        self,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
    ) -> RunnableConfig:
        return {"callbacks": children_of(run_manager)}

    def _message(
        self,
        result: Mapping[str, Any],
        stop: list[str] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> AIMessage:
        usage = result["usage"]
        chair = (context or {}).get("aggregator_model")
        return AIMessage(
            content=cut_at_stop(result["final_answer"], stop or self.stop),
            tool_calls=list(getattr(result["messages"][-1], "tool_calls", [])),
            usage_metadata=UsageMetadata(
                input_tokens=usage["total"]["input_tokens"],
                output_tokens=usage["total"]["output_tokens"],
                total_tokens=usage["total"]["total_tokens"],
                input_token_details={
                    "cache_read": usage["total"].get("cached_input_tokens", 0)
                },
            ),
            response_metadata={
                "model_name": f"{self.model_name} ({chair})"
                if chair
                else self.model_name,
                "model_provider": "attention-moa",
                "stop_reason": result["stop_reason"],
                "layers": len(result["layers"]),
                "usage": usage,
            },
        )

    async def _result(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
        kwargs: Mapping[str, Any],
    ) -> ChatResult:
        context = self._run_options(kwargs)
        with detached():
            result = await self._graph.ainvoke(
                {"messages": messages}, self._config(run_manager), context=context
            )
        message = self._message(result, stop, context)
        return ChatResult(generations=[ChatGeneration(message=message)])

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
        # The graph has no checkpointer, so its async path serves sync callers
        # too, on the package's event loop.
        return run_sync(self._result(messages, stop, run_manager, kwargs))

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
        return await self._result(messages, stop, run_manager, kwargs)

    async def _chunks(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        config: RunnableConfig,
        context: dict[str, Any],
    ) -> AsyncIterator[ChatGenerationChunk]:
        gate = StopGate(stop or self.stop)
        # With tools the answer is known only whole: the final stage's words
        # may carry calls to take out, so it comes as one chunk at the end.
        whole = bool(context.get("tools"))
        events = astream_answer(
            self._graph, {"messages": messages}, config, context=context
        )
        with detached():  # the graph takes its config on its first step
            first = await anext(events)
        async for event in prepend(first, events):
            if event.kind == "token" and not whole and (text := gate.feed(event.data)):
                yield ChatGenerationChunk(message=AIMessageChunk(content=text))
            elif event.kind == "result":
                final = self._message(event.data, stop, context)
                rest = final.text if whole else gate.finish()
                if rest:
                    yield ChatGenerationChunk(message=AIMessageChunk(content=rest))
                yield ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        tool_call_chunks=[
                            ToolCallChunk(
                                name=call["name"],
                                args=json.dumps(call["args"], ensure_ascii=False),
                                id=call["id"],
                                index=index,
                            )
                            for index, call in enumerate(final.tool_calls)
                        ],
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
        context = self._run_options(kwargs)
        config = self._config(run_manager)
        async for chunk in self._chunks(messages, stop, config, context):
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
        # The graph streams on its async path, run on the package's event loop;
        # this also works where a loop is already running (a notebook).
        context = self._run_options(kwargs)
        chunks = self._chunks(messages, stop, self._config(run_manager), context)
        for chunk in iterate_sync(chunks):
            if run_manager and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
