"""Tools in the ensemble: the run's tools, proposed calls in text, final calls.

Proposers, critics and refiners work in text, so that any model can take part
and every stage can argue about a call: a proposed call is a fenced block

    ```tool_calls
    [{"name": "get_weather", "arguments": {"city": "Paris"}, "reason": "..."}]
    ```

inside an agent's answer. The summary and residual agents are bound to the
tools natively (`bind_tools`, honouring `tool_choice`); their native calls are
written into their text in the same block, so that layer outputs, the stop
test and the next layer's reference all see them. The run's final message
takes the calls out of the block again as `AIMessage.tool_calls`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.messages.tool import ToolCall
from langchain_core.utils.function_calling import convert_to_openai_tool

from attention_moa_graph._core.messages import (
    fence,
    latest_turn,
    message_text,
    transcript_lines,
)

CHOICES = ("auto", "none", "required")
"""`tool_choice` words; any other string names the one tool to call."""

_BLOCK = re.compile(r"```[ \t]*tool_calls[ \t]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)


def tool_schemas(tools: Sequence[Any], *, where: str) -> list[dict[str, Any]]:
    """Tools of any LangChain form as OpenAI function schemas.

    Raises:
        ValueError: If a tool cannot be converted.
    """
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
        raise ValueError(
            f"{where}: tools must be a list (of @tool functions, BaseTools, pydantic "
            f"models or OpenAI tool schemas), got {type(tools).__name__}."
        )
    schemas: list[dict[str, Any]] = []
    for tool in tools:
        try:
            schema = convert_to_openai_tool(tool)
        except Exception as exc:
            raise ValueError(
                f"{where}: cannot use {tool!r:.80} as a tool: {exc}"
            ) from None
        function = schema.get("function") if isinstance(schema, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ValueError(
                f"{where}: cannot use {tool!r:.80} as a tool: an OpenAI tool schema "
                "needs {'type': 'function', 'function': {'name': ..., 'parameters': "
                "{...}}}."
            )
        schemas.append(schema)
    return schemas


def tool_names(schemas: Sequence[Mapping[str, Any]]) -> list[str]:
    """The names of a run's tools, in order."""
    return [s["function"]["name"] for s in schemas]


def check_tool_choice(choice: Any, names: Sequence[str], *, where: str) -> str:
    """A `tool_choice` as `auto`, `none`, `required` or one tool's name.

    Accepts LangChain's and OpenAI's spellings: `any` and True mean required,
    `{"type": "function", "function": {"name": ...}}` and `{"name": ...}`
    name a tool.

    Raises:
        ValueError: If the choice names no tool of the run, or requires a call
            of a run without tools.
    """
    if choice is None:
        return "auto"
    if choice is True or choice == "any":
        choice = "required"
    if isinstance(choice, Mapping):
        inner = choice.get("function", choice)
        choice = inner.get("name") if isinstance(inner, Mapping) else None
    if not isinstance(choice, str) or not choice:
        raise ValueError(
            f"{where}: tool_choice must be 'auto', 'none', 'required' or a tool's "
            f"name, got {choice!r}."
        )
    if choice not in CHOICES and choice not in names:
        known = ", ".join(names) or "none (the run has no tools)"
        raise ValueError(
            f"{where}: tool_choice {choice!r} names no tool of the run; its tools "
            f"are: {known}."
        )
    if choice != "auto" and choice != "none" and not names:
        raise ValueError(f"{where}: tool_choice {choice!r} needs tools; give tools=.")
    return choice


def choice_text(choice: str) -> str:
    """What `tool_choice` asks of the answer, in words for the prompts."""
    if choice == "auto":
        return "Use tools only when the request needs them; otherwise answer in text."
    if choice == "none":
        return "Do not call any tool now: answer in text."
    if choice == "required":
        return "The answer must be one or more tool calls."
    return f"The answer must call the tool `{choice}`."


def catalogue(schemas: Sequence[Mapping[str, Any]]) -> str:
    """The tools as fenced JSON schemas, for the prompts."""
    listed = [
        {
            "name": s["function"]["name"],
            "description": s["function"].get("description", ""),
            "parameters": s["function"].get("parameters", {}),
        }
        for s in schemas
    ]
    return fence("tools", json.dumps(listed, ensure_ascii=False, indent=1))


def render_calls(calls: Sequence[Mapping[str, Any]]) -> str:
    """Calls as the text protocol's fenced block (name, arguments, id, reason)."""
    entries = []
    for call in calls:
        entry: dict[str, Any] = {
            "name": call["name"],
            "arguments": call.get("args", call.get("arguments", {})),
        }
        if call.get("id"):
            entry["id"] = call["id"]
        if call.get("reason"):
            entry["reason"] = call["reason"]
        entries.append(entry)
    return "```tool_calls\n" + json.dumps(entries, ensure_ascii=False) + "\n```"


def split_calls(text: str, names: Sequence[str]) -> tuple[str, list[dict[str, Any]]]:
    """The text without its tool-call blocks, and the valid calls they hold.

    A call is valid when it names one of `names` and its arguments are a JSON
    object; others are dropped (a stage may have garbled a proposal).
    """
    calls: list[dict[str, Any]] = []
    for block in _BLOCK.findall(text):
        try:
            parsed = json.loads(block)
        except json.JSONDecodeError:
            continue
        for entry in parsed if isinstance(parsed, list) else [parsed]:
            if not isinstance(entry, dict) or entry.get("name") not in names:
                continue
            arguments = entry.get("arguments", entry.get("args", {}))
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments or "{}")
                except json.JSONDecodeError:
                    continue
            if not isinstance(arguments, dict):
                continue
            call: dict[str, Any] = {"name": entry["name"], "args": arguments}
            if isinstance(entry.get("id"), str) and entry["id"]:
                call["id"] = entry["id"]
            calls.append(call)
    return _BLOCK.sub("", text).strip(), calls


def with_native_calls(reply: BaseMessage) -> str:
    """A bound stage's reply as text: its words, then its native calls as a block."""
    text = str(reply.text).strip()
    calls = getattr(reply, "tool_calls", None) or []
    if not calls:
        return text
    return f"{text}\n\n{render_calls(calls)}".strip()


def keep_agreed(summary: str, residual: str, names: Sequence[str]) -> tuple[str, bool]:
    """The residual reply with every call of the summary whose tool it dropped.

    The summary's calls are what the layer agreed on; the residual agent may
    revise a call's arguments (a call to the same tool) or add calls, but not
    drop one. Returns the text and whether a call was put back.
    """
    _, agreed = split_calls(summary, names)
    if not agreed:
        return residual, False
    text, kept = split_calls(residual, names)
    called = {call["name"] for call in kept}
    missing = [call for call in agreed if call["name"] not in called]
    if not missing:
        return residual, False
    return f"{text}\n\n{render_calls(kept + missing)}".strip(), True


def final_message(
    text: str,
    names: Sequence[str],
    *,
    name: str,
    turn: int,
) -> AIMessage:
    """The run's answer: the words, and the calls of its block as `tool_calls`.

    Calls without an id get one made from the turn and the call, so that a
    replayed turn gets the same ids and two turns never share one.
    """
    words, calls = split_calls(text, names)
    tool_calls = []
    for index, call in enumerate(calls):
        digest = hashlib.sha256(
            json.dumps(
                [turn, index, call["name"], call["args"]], sort_keys=True
            ).encode()
        ).hexdigest()[:24]
        tool_calls.append(
            ToolCall(
                name=call["name"],
                args=call["args"],
                id=call.get("id") or f"call_{digest}",
                type="tool_call",
            )
        )
    return AIMessage(content=words, tool_calls=tool_calls, name=name)


def plain_history(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """The conversation with tool calls and results written out as text.

    For the stages whose models are not bound to the tools: several providers
    refuse tool messages in a request that declares no tools.
    """
    plain: list[AnyMessage] = []
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            text = message_text(message).strip()
            calls = render_calls(message.tool_calls)
            plain.append(AIMessage(content=f"{text}\n\n{calls}".strip()))
        elif isinstance(message, ToolMessage):
            label = f"Result of tool call {message.tool_call_id}"
            if message.name:
                label += f" ({message.name})"
            if getattr(message, "status", "success") == "error":
                label += ", which failed"
            result = fence("tool-result", message_text(message))
            plain.append(HumanMessage(content=f"{label}:\n{result}"))
        else:
            plain.append(message)
    return plain


def has_tool_messages(messages: Sequence[AnyMessage]) -> bool:
    """Whether the conversation holds tool calls or results."""
    return any(
        isinstance(m, ToolMessage) or (isinstance(m, AIMessage) and m.tool_calls)
        for m in messages
    )


def bind_params(
    model: BaseChatModel, schemas: Sequence[Mapping[str, Any]], choice: str
) -> dict[str, Any] | None:
    """The call parameters that bind `model` to the tools, or None if it cannot.

    They are what the model's own `bind_tools` binds (the tools in its
    provider's format, the choice), so any LangChain chat model with tool
    calling works; None means the model has no tool calling, and the stage
    falls back to the text protocol.
    """
    wanted = "any" if choice == "required" else choice
    try:
        bound = model.bind_tools([dict(s) for s in schemas], tool_choice=wanted)
    except NotImplementedError:
        return None
    return dict(getattr(bound, "kwargs", {}))


def check_response_format(value: Any, *, where: str) -> None:
    """Refuse a `response_format` that is not OpenAI's json_schema or json_object.

    Raises:
        ValueError: Naming the expected shape.
    """
    shape = (
        "{'type': 'json_schema', 'json_schema': {'name': ..., 'schema': {...}}} "
        "or {'type': 'json_object'}"
    )
    if not isinstance(value, Mapping) or value.get("type") not in (
        "json_schema",
        "json_object",
    ):
        raise ValueError(f"{where}: response_format must be {shape}, got {value!r:.80}")
    if value["type"] == "json_schema":
        inner = value.get("json_schema")
        if not isinstance(inner, Mapping) or not isinstance(
            inner.get("schema"), Mapping
        ):
            raise ValueError(f"{where}: response_format must be {shape}.")


def response_schema(response_format: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema a response format asks for.

    `json_object` may carry the caller's schema under `schema` (the prompt
    shows it; the API is sent the bare `json_object`), else any object.
    """
    if response_format.get("type") == "json_schema":
        return dict(response_format["json_schema"]["schema"])
    return dict(response_format.get("schema") or {"type": "object"})


def tool_notes(
    prompts: Any,
    schemas: Sequence[Mapping[str, Any]],
    choice: str,
    messages: Sequence[AnyMessage],
    response_format: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The notes each stage adds to its instructions in a run with tools.

    `plan` (drafts, refinements), `review` (critiques), `decision` (summary
    and residual agents); with a response format, `decision` also asks for
    JSON of its schema. Empty with neither.
    """
    notes: dict[str, str] = {}
    if response_format:
        schema = json.dumps(response_schema(response_format), ensure_ascii=False)
        notes["decision"] = prompts.structured_answer.format(schema=schema)
    if not schemas:
        return notes
    tools = catalogue(schemas)
    wanted = choice_text(choice)
    exchange = messages[latest_turn(messages) + 1 :]
    done = (
        fence("tool-exchange", "\n\n".join(transcript_lines(exchange)))
        if exchange
        else "(none yet)"
    )
    decision = prompts.tool_decision.format(tools=tools, choice=wanted)
    return {
        "plan": prompts.tool_plan.format(tools=tools, choice=wanted),
        "review": prompts.tool_review.format(tools=tools, exchange=done),
        "decision": "\n\n".join(filter(None, [decision, notes.get("decision")])),
    }
