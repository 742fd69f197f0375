"""OpenAI's chat-completions request, checked, and the response bodies.

The request model follows OpenAI's shape: unknown fields are ignored, as
OpenAI's own server does, while fields this server cannot honour (`n` above
1) are refused rather than silently dropped. `tools`, `tool_choice` and
`response_format` go to the run (see docs/tools.md). Every rejection is an
`ApiError`, which the server turns into OpenAI's error body.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from attention_moa_graph._core.sampling import MOST_TOKENS
from attention_moa_graph._core.tools import (
    check_response_format,
    check_tool_choice,
    tool_names,
    tool_schemas,
)


class ApiError(Exception):
    """A request this server refuses, with the status and OpenAI error body."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """OpenAI's error object."""
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


class _Open(BaseModel):
    # Strict: "stream": "yes" or "max_tokens": "10" is a client's bug to hear of.
    model_config = ConfigDict(extra="ignore", strict=True)


class TextPart(_Open):
    type: Literal["text"]
    text: str


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class StreamOptions(_Open):
    include_usage: bool = False


class ChatRequest(_Open):
    """The fields of a chat-completions request that this server reads."""

    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1)
    max_tokens: int | None = Field(None, ge=1, le=MOST_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MOST_TOKENS)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None

    def lc_messages(self) -> list[dict[str, Any]]:
        """The conversation as message dicts LangChain converts."""
        messages: list[dict[str, Any]] = []
        for message in self.messages:
            content = message.content
            if isinstance(content, list):
                content = "".join(part.text for part in content)
            role = "system" if message.role == "developer" else message.role
            entry: dict[str, Any] = {"role": role, "content": content or ""}
            if message.tool_calls:
                entry["tool_calls"] = message.tool_calls
            if message.tool_call_id:
                entry["tool_call_id"] = message.tool_call_id
            messages.append(entry)
        return messages

    def stops(self) -> list[str] | None:
        """`stop` as a list (OpenAI takes one string or several)."""
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def run_options(self) -> dict[str, Any]:
        """What this request sets for its run (the graph's context)."""
        chosen: dict[str, Any] = {}
        cap = self.max_completion_tokens or self.max_tokens
        if cap is not None:
            chosen["max_tokens"] = cap
        if self.temperature is not None:
            chosen["temperature"] = self.temperature
        if self.tools:
            chosen["tools"] = self.tools
        if self.tool_choice is not None:
            chosen["tool_choice"] = self.tool_choice
        if self.response_format is not None and self.response_format.get("type") in (
            "json_schema",
            "json_object",
        ):
            chosen["response_format"] = self.response_format
        return chosen


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _where(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "body"


def parse_request(body: bytes, served_model: str) -> ChatRequest:
    """The request in `body`, checked against what this server serves.

    Raises:
        ApiError: 400 naming the first problem (never echoing the input), or
            404 for another model's name.
    """
    try:
        request = ChatRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = _where(first["loc"])
        message = first["msg"]
        if "escape" in message and _SURROGATE.search(body):
            message = (
                "the body is not valid UTF-8 JSON: a \\ud800-\\udfff escape must be "
                "half of a surrogate pair (encode the text as UTF-8 before sending)"
            )
        raise ApiError(
            400,
            f"invalid request body: {where}: {message}",
            param=None if where == "body" else where,
        ) from None
    if request.model != served_model:
        raise ApiError(
            404,
            f"model {request.model!r} is not served here; this server serves "
            f"{served_model!r}.",
            param="model",
            code="model_not_found",
        )
    if request.n != 1:
        raise ApiError(
            400,
            "n must be 1: the ensemble writes one answer per request; send "
            "several requests for several answers.",
            param="n",
        )
    if request.top_p is not None and request.top_p != 1:
        raise ApiError(
            400,
            "top_p is not supported: the ensemble samples with its own settings; "
            "leave top_p out (or 1) and set temperature instead.",
            param="top_p",
        )
    _check_tools(request)
    return request


def _check_tools(request: ChatRequest) -> None:
    """Refuse tools, a tool choice or a response format the run could not take."""
    try:
        schemas = tool_schemas(request.tools or [], where="tools")
        check_tool_choice(request.tool_choice, tool_names(schemas), where="tool_choice")
        wanted = request.response_format
        if wanted is not None and wanted.get("type") != "text":
            check_response_format(wanted, where="response_format")
    except ValueError as exc:
        field = str(exc).split(":", 1)[0]
        raise ApiError(400, str(exc), param=field) from None


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(result: dict[str, Any]) -> dict[str, int]:
    """OpenAI's usage object for a finished run."""
    total = result["usage"]["total"]
    return {
        "prompt_tokens": total["input_tokens"],
        "completion_tokens": total["output_tokens"],
        "total_tokens": total["total_tokens"],
    }


def tool_calls(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The answer's tool calls in OpenAI's shape (empty without any)."""
    calls = getattr(result["messages"][-1], "tool_calls", None) or []
    return [
        {
            "id": call["id"],
            "type": "function",
            "function": {
                "name": call["name"],
                "arguments": json.dumps(call["args"], ensure_ascii=False),
            },
        }
        for call in calls
    ]


def completion(result: dict[str, Any], answer: str, model: str) -> dict[str, Any]:
    """The response body of a finished, unstreamed run."""
    message: dict[str, Any] = {"role": "assistant", "content": answer}
    calls = tool_calls(result)
    if calls:
        message.update(content=answer or None, tool_calls=calls)
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": usage(result),
        "attention_moa": {
            "stop_reason": result["stop_reason"],
            "layers": len(result["layers"]),
            "usage": result["usage"],
        },
    }


def chunk(
    base: dict[str, Any], delta: dict[str, Any], finish: str | None = None
) -> dict[str, Any]:
    """One streamed chunk."""
    return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def chunk_base(model: str) -> dict[str, Any]:
    """The fields every chunk of one stream shares."""
    return {
        "id": completion_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
