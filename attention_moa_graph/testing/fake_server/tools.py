"""The fake server's tool calls and structured replies: pure functions of the request.

Rules, so that tests can predict every reply:

- A request with `tools` (and `tool_choice` other than `none`) whose last
  message is not a tool result calls a tool. `tool_choice` naming a tool calls
  it; `required` calls the tool the latest user message mentions, else the
  first; `auto` calls a tool only if the latest user message mentions it (its
  name, or a word of its name of four letters or more other than get, set,
  fetch, find, make, call or run).
- Arguments: those written in the user's text as `name(3)` or `name(x, y)`
  (positional, in the schema's order, converted to the parameter types), else
  those a ```tool_calls block in the prompt proposes for the tool, else a
  value per required parameter made from its type: string parameters take
  the phrases quoted in the user's latest message, in order, then text made
  from the prompt's digest.
- After a tool result, the reply is text that quotes the result.
- `response_format` `json_schema` gets an object of the schema (values made
  as for arguments); `json_object` gets an object whose keys are the words
  quoted in the user's latest message (`{"answer": ...}` without any).
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_GENERIC = {"get", "set", "fetch", "find", "make", "call", "run"}
_BLOCK = re.compile(r"```[ \t]*tool_calls[ \t]*\n(.*?)\n[ \t]*```", re.DOTALL)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        )
    return ""


def _latest_user(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name).replace("_", " ")
    return [
        w.lower() for w in spaced.split() if len(w) >= 4 and w.lower() not in _GENERIC
    ]


def mentions(text: str, name: str) -> bool:
    """Whether `text` names the tool, or a word of its name (see the rules)."""
    lowered = text.lower()
    return name.lower() in lowered or any(
        re.search(rf"\b{re.escape(w)}\b", lowered) for w in _words(name)
    )


def _functions(tools: Sequence[Any]) -> list[Mapping[str, Any]]:
    return [
        t["function"]
        for t in tools
        if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
    ]


def _chosen(
    functions: Sequence[Mapping[str, Any]], choice: Any, user: str
) -> Mapping[str, Any] | None:
    if isinstance(choice, Mapping):
        choice = (choice.get("function") or {}).get("name")
    if choice == "none" or not functions:
        return None
    named = [f for f in functions if f.get("name") == choice]
    if named:
        return named[0]
    mentioned = [f for f in functions if mentions(user, str(f.get("name")))]
    if mentioned:
        return mentioned[0]
    return functions[0] if choice == "required" else None


def quoted(text: str) -> list[str]:
    """The phrases quoted in `text` ('...' or "..."), in order."""
    return [a or b for a, b in re.findall(r"'([^']+)'|\"([^\"]+)\"", text)]


def _value(schema: Mapping[str, Any], seed: str, phrases: list[str]) -> Any:
    kind = schema.get("type")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "integer":
        return 3
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return [_value(schema.get("items") or {"type": "string"}, seed, phrases)]
    if kind == "object" or "properties" in schema:
        return instance_of(schema, seed, phrases)
    return phrases.pop(0) if phrases else f"text {seed}"


def instance_of(
    schema: Mapping[str, Any], seed: str, phrases: list[str] | None = None
) -> dict[str, Any]:
    """An object with a value for every required property (all, if none listed).

    String values take `phrases` in order while they last.
    """
    phrases = list(phrases or [])
    properties = schema.get("properties") or {}
    required = schema.get("required") or list(properties)
    return {
        name: _value(properties.get(name) or {}, f"{seed}-{name}", phrases)
        for name in required
        if name in properties
    }


def _convert(text: str, schema: Mapping[str, Any]) -> Any:
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        value = text.strip().strip("'\"")
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "string":
            return str(value)
    except (TypeError, ValueError):
        pass
    return value


def _arguments(
    function: Mapping[str, Any], user: str, prompt: str, seed: str
) -> dict[str, Any]:
    name = str(function.get("name"))
    parameters = function.get("parameters") or {}
    properties = parameters.get("properties") or {}
    written = re.search(rf"\b{re.escape(name)}\(([^()]*)\)", user)
    if written is not None:
        values = [v for v in written.group(1).split(",") if v.strip()]
        return {
            key: _convert(value, properties[key])
            for key, value in zip(properties, values, strict=False)
        }
    for block in _BLOCK.findall(prompt):
        try:
            proposed = json.loads(block)
        except json.JSONDecodeError:
            continue
        for entry in proposed if isinstance(proposed, list) else [proposed]:
            arguments = entry.get("arguments") if isinstance(entry, dict) else None
            if entry.get("name") == name and isinstance(arguments, dict):
                return arguments
    return instance_of(parameters, seed, quoted(user))


def tool_reply(
    request: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]
) -> tuple[str, list[dict[str, Any]]] | None:
    """The reply to a request with tools, or None to answer as without them.

    Returns the text and the OpenAI-shaped `tool_calls` of the reply.
    """
    functions = _functions(request.get("tools") or [])
    if not functions:
        return None
    if messages and messages[-1].get("role") == "tool":
        result = _text(messages[-1].get("content"))
        return f"The tool answered: {result}", []
    user = _latest_user(messages)
    prompt = "\n".join(_text(m.get("content")) for m in messages)
    chosen = _chosen(functions, request.get("tool_choice", "auto"), user)
    if chosen is None:
        return None
    seed = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    arguments = _arguments(chosen, user, prompt, seed)
    call_id = (
        "call_"
        + hashlib.sha256(
            json.dumps([chosen.get("name"), arguments, prompt]).encode()
        ).hexdigest()[:16]
    )
    return "", [
        {
            "id": call_id,
            "type": "function",
            "function": {
                "name": chosen.get("name"),
                "arguments": json.dumps(arguments, ensure_ascii=False),
            },
        }
    ]


def structured_reply(
    request: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]
) -> str | None:
    """The JSON text answering a `response_format` request, or None without one."""
    wanted = request.get("response_format")
    if not isinstance(wanted, Mapping):
        return None
    prompt = "\n".join(_text(m.get("content")) for m in messages)
    seed = hashlib.sha256(prompt.encode()).hexdigest()[:8]
    user = _latest_user(messages)
    if wanted.get("type") == "json_schema":
        schema = (wanted.get("json_schema") or {}).get("schema") or {}
        return json.dumps(instance_of(schema, seed, quoted(user)))
    if wanted.get("type") == "json_object":
        keys = quoted(user) or ["answer"]
        return json.dumps({key: f"text {seed}-{key}" for key in keys})
    return None
