"""Structured output for the ensemble: its final stage writes the caller's schema.

Three methods, as LangChain names them. `function_calling` binds the schema as
the one tool the answer must call, so proposers propose its arguments, critics
judge them and the summary agent makes the call. `json_schema` and
`json_mode` ask the summary and residual agents for JSON (OpenAI's
`response_format` where the client takes it, the prompt always). An answer
that does not validate is sent back once, with the validation error, to the
aggregator model; a second failure is a clear error (or, with `include_raw`,
the `parsing_error`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.utils.function_calling import (
    convert_to_json_schema,
    convert_to_openai_tool,
)
from pydantic import BaseModel, ValidationError

from attention_moa_graph._calls.models import response_format_params

Method = Literal["function_calling", "json_schema", "json_mode"]
METHODS: tuple[Method, ...] = ("function_calling", "json_schema", "json_mode")

_FENCED = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)

REPAIR_PROMPT = (
    "Your reply did not match the required format: {error}\n"
    "Reply again with the corrected answer only, in the required format."
)


@dataclass(frozen=True)
class Target:
    """A schema as the ensemble is asked for it and as its reply is checked."""

    name: str
    description: str
    parameters: dict[str, Any]
    """The JSON schema of the object."""
    validate: Callable[[Any], Any]
    """Checks a parsed object; returns the caller's value (a model, a dict)."""

    def tool(self) -> dict[str, Any]:
        """The schema as an OpenAI function tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def response_format(self, method: Method, strict: bool | None) -> dict[str, Any]:
        """OpenAI's `response_format` for the json methods."""
        if method == "json_mode":
            return {"type": "json_object"}
        inner: dict[str, Any] = {"name": self.name, "schema": self.parameters}
        if strict is not None:
            inner["strict"] = strict
        return {"type": "json_schema", "json_schema": inner}


def target_of(schema: Any) -> Target:
    """A pydantic model (v2 or v1), a TypedDict or a JSON schema, as a `Target`.

    Raises:
        ValueError: If the schema is none of those.
    """
    try:
        function = convert_to_openai_tool(schema)["function"]
    except Exception as exc:
        raise ValueError(
            "with_structured_output takes a pydantic model, a TypedDict or a JSON "
            f"schema dict; cannot use {schema!r:.80}: {exc}"
        ) from None
    parameters = dict(function.get("parameters") or {"type": "object"})
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        validate: Callable[[Any], Any] = schema.model_validate
    elif isinstance(schema, type) and hasattr(schema, "parse_obj"):  # pydantic.v1
        validate = schema.parse_obj
    else:
        # A TypedDict or a JSON schema: checked against the JSON schema LangChain
        # makes of it (a TypedDict key with a default is optional there).
        validate = _required_keys(parameters)
    return Target(
        name=str(function["name"]),
        description=str(function.get("description", "")),
        parameters=parameters,
        validate=validate,
    )


def _required_keys(parameters: Mapping[str, Any]) -> Callable[[Any], Any]:
    """The check of a JSON-schema dict: an object with its required keys."""
    required = list(parameters.get("required") or [])

    def validate(value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"expected a JSON object, got {type(value).__name__}")
        missing = [key for key in required if key not in value]
        if missing:
            raise ValueError(f"missing required keys: {', '.join(missing)}")
        return value

    return validate


def _parsed(message: BaseMessage, target: Target, method: Method) -> Any:
    """The caller's value from a reply; raises ValueError when it does not fit."""
    if method == "function_calling":
        calls = [
            c for c in getattr(message, "tool_calls", []) if c["name"] == target.name
        ]
        if not calls:
            raise ValueError(f"the reply made no call to {target.name}")
        data: Any = calls[0]["args"]
    else:
        text = str(message.text)
        fenced = _FENCED.match(text)
        try:
            data = json.loads(fenced.group(1) if fenced else text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the reply is not JSON ({exc.msg})") from None
    try:
        return target.validate(data)
    except ValidationError as exc:
        raise ValueError(str(exc)) from None


def structured_runnable(
    model: Any,
    schema: Any,
    *,
    method: Method,
    include_raw: bool,
    strict: bool | None,
    repair_model: Callable[[], BaseChatModel],
) -> Runnable[LanguageModelInput, Any]:
    """The ensemble `model` returning `schema`'s values (see the module doc)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}.")
    target = target_of(schema)
    # What LangChain's own structured output tells callbacks and LangSmith.
    traced = {
        "ls_structured_output_format": {
            "kwargs": {"method": method},
            "schema": convert_to_json_schema(schema),
        }
    }
    if method == "function_calling":
        bound = model.bind_tools([target.tool()], tool_choice=target.name, **traced)
    else:
        wanted = target.response_format(method, strict)
        if method == "json_mode":  # the API takes no schema; the prompt shows it
            wanted = {**wanted, "schema": target.parameters}
        bound = model.bind(response_format=wanted, **traced)

    def repair_call(
        messages: list[BaseMessage], failed: BaseMessage, error: str
    ) -> Any:
        chair = repair_model()
        shown = str(failed.text) or json.dumps(
            [c["args"] for c in getattr(failed, "tool_calls", [])]
        )
        prompt = [
            *messages,
            AIMessage(content=shown),
            HumanMessage(content=REPAIR_PROMPT.format(error=error)),
        ]
        if method == "function_calling":
            return chair.bind_tools([target.tool()], tool_choice=target.name), prompt
        shaped = response_format_params(chair, target.response_format(method, strict))
        return chair.bind(**shaped), prompt

    def outcome(raw: BaseMessage, parsed: Any, error: Exception | None) -> Any:
        if include_raw:
            return {"raw": raw, "parsed": parsed, "parsing_error": error}
        if error is not None:
            raise error
        return parsed

    def failure(error: str) -> OutputParserException:
        return OutputParserException(
            f"the ensemble's answer did not match {target.name} after one retry "
            f"with the error: {error}"
        )

    def parse(raw: BaseMessage) -> tuple[Any, str | None]:
        try:
            return _parsed(raw, target, method), None
        except ValueError as exc:
            return None, str(exc)

    def settle(raw: BaseMessage, parsed: Any, error: str | None) -> Any:
        return outcome(raw, parsed, failure(error) if error is not None else None)

    # The input's messages are needed only for a repair, so only made then.
    def run(value: LanguageModelInput, config: RunnableConfig) -> Any:
        raw = bound.invoke(value, config)
        parsed, error = parse(raw)
        if error is not None:
            messages = model._convert_input(value).to_messages()
            again, prompt = repair_call(messages, raw, error)
            raw = again.invoke(prompt, config)
            parsed, error = parse(raw)
        return settle(raw, parsed, error)

    async def arun(value: LanguageModelInput, config: RunnableConfig) -> Any:
        raw = await bound.ainvoke(value, config)
        parsed, error = parse(raw)
        if error is not None:
            messages = model._convert_input(value).to_messages()
            again, prompt = repair_call(messages, raw, error)
            raw = await again.ainvoke(prompt, config)
            parsed, error = parse(raw)
        return settle(raw, parsed, error)

    return RunnableLambda(run, afunc=arun, name="structured_output")
