"""The graphs `langgraph.json` serves to LangGraph Studio.

`attention_moa` is the ensemble; `attention_moa_agent` is an agent whose model
is the ensemble, with two example tools.

This is the only module that reads the environment (`langgraph dev` loads
`.env`): `ATTENTION_MOA_PROPOSERS` (comma-separated `provider:model` specs),
`ATTENTION_MOA_AGGREGATOR` and `ATTENTION_MOA_MAX_LAYERS`. Without them it uses
the offline demo models, so Studio opens with no keys. Models are resolved on
first use, so importing this module never needs a key either.
"""

from __future__ import annotations

import ast
import operator
import os
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain.agents import create_agent
from langchain_core.tools import tool

from attention_moa_graph._core.graph import create_attention_moa
from attention_moa_graph.adapters.chat_model import AttentionMoAChatModel

_DEMO_PROPOSERS = "demo:alpha,demo:beta,demo:gamma"
_DEMO_AGGREGATOR = "demo:chair"


def _proposer_specs() -> list[str]:
    raw = os.environ.get("ATTENTION_MOA_PROPOSERS") or _DEMO_PROPOSERS
    return [spec.strip() for spec in raw.split(",") if spec.strip()]


graph = create_attention_moa(
    _proposer_specs(),
    aggregator=os.environ.get("ATTENTION_MOA_AGGREGATOR") or _DEMO_AGGREGATOR,
    max_layers=int(os.environ.get("ATTENTION_MOA_MAX_LAYERS") or 3),
    name="attention_moa",
)


@tool
def local_time(timezone: str) -> str:
    """The current local time in an IANA time zone, e.g. 'Europe/Paris'."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {timezone!r}; use an IANA name like 'Asia/Tokyo'"
    return datetime.now(zone).strftime("%Y-%m-%d %H:%M %Z")


@tool
def calculate(expression: str) -> str:
    """Evaluate arithmetic: numbers, + - * / // % ** and parentheses."""
    try:
        return str(_arithmetic(ast.parse(expression, mode="eval").body))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError) as exc:
        return f"cannot evaluate {expression!r}: {exc}"


_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def _arithmetic(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value) if isinstance(node.value, float) else node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        value = _arithmetic(node.operand)
        return value if isinstance(node.op, ast.UAdd) else -value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _arithmetic(node.left), _arithmetic(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("exponent too large")
        result: float = _OPERATORS[type(node.op)](left, right)
        return result
    raise ValueError("only numbers and arithmetic operators are allowed")


agent = create_agent(
    AttentionMoAChatModel(  # type: ignore[call-arg]  # options by keyword
        proposers=_proposer_specs(),
        aggregator=os.environ.get("ATTENTION_MOA_AGGREGATOR") or _DEMO_AGGREGATOR,
        max_layers=int(os.environ.get("ATTENTION_MOA_MAX_LAYERS") or 2),
        model="attention-moa",
    ),
    [local_time, calculate],
    name="attention_moa_agent",
)
"""An agent whose model is the ensemble, with two example tools (Studio's
second graph): ask it "What time is it in 'Asia/Tokyo'? Also calculate
'3.5 * 60'." and watch the calls it agrees on, the tool results and the answer."""
