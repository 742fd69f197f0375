"""Pure routing: `Send` fan-outs inside a layer, the stop test and the layer loop."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Literal

from langgraph.types import Send

from attention_moa_graph.prompts import STOP_SIGNAL
from attention_moa_graph.state import (
    CritiqueTask,
    DraftTask,
    LayerState,
    MoAState,
    RefineTask,
    Role,
)

_MARKUP = set("*_~`")


def _strip_decoration(text: str) -> str:
    """Drop whitespace, markdown emphasis and punctuation from both ends."""

    def decorative(char: str) -> bool:
        return (
            char.isspace()
            or char in _MARKUP
            or unicodedata.category(char).startswith("P")
        )

    start, end = 0, len(text)
    while start < end and decorative(text[start]):
        start += 1
    while end > start and decorative(text[end - 1]):
        end -= 1
    return text[start:end]


_NORMALISED_SIGNAL = _strip_decoration(STOP_SIGNAL).casefold()


def is_stop_signal(reply: str) -> bool:
    """Whether a residual reply is the stop signal itself, not text mentioning it.

    Example:
        >>> is_stop_signal("**NO_FURTHER_IMPROVEMENT.**")
        True
        >>> is_stop_signal("Round 2 adds nothing, so: NO_FURTHER_IMPROVEMENT")
        False
    """
    return _strip_decoration(reply).casefold() == _NORMALISED_SIGNAL


def fan_out_drafts(state: LayerState, agents: Sequence[str]) -> list[Send]:
    """One draft per agent; from layer 2 on, the previous output is the reference."""
    history = state["history"]
    return [
        Send(
            "draft",
            DraftTask(
                agent=agent,
                layer=state["layer"],
                messages=state["messages"],
                reference=history[-1] if history else None,
                temperature=state["settings"]["temperatures"].get("draft"),
            ),
        )
        for agent in agents
    ]


def fan_out_critiques(
    state: LayerState, agents: Sequence[str]
) -> list[Send] | Literal["summarize"]:
    """All cross- and self-attention critiques at once, or straight to the summary."""
    settings = state["settings"]
    if not (settings["cross_attention"] or settings["self_attention"]):
        return "summarize"
    drafts = state["drafts"]
    sends: list[Send] = []
    for critic in agents:
        for target in agents:
            own = critic == target
            role: Role = "self_attention" if own else "cross_attention"
            if not (settings["self_attention"] if own else settings["cross_attention"]):
                continue
            sends.append(
                Send(
                    role,
                    CritiqueTask(
                        critic=critic,
                        target=target,
                        layer=state["layer"],
                        messages=state["messages"],
                        own_answer=drafts[critic],
                        target_answer=drafts[target],
                        temperature=settings["temperatures"].get(role),
                    ),
                )
            )
    return sends


def fan_out_refinements(state: LayerState, agents: Sequence[str]) -> list[Send]:
    """One refinement per agent, with the suggestions addressed to it in agent order."""
    critiques = state["critiques"]
    sends: list[Send] = []
    for agent in agents:
        received = critiques.get(agent, {})
        sends.append(
            Send(
                "refine",
                RefineTask(
                    agent=agent,
                    layer=state["layer"],
                    messages=state["messages"],
                    draft=state["drafts"][agent],
                    suggestions=[received[c] for c in agents if c in received],
                    temperature=state["settings"]["temperatures"].get("refine"),
                ),
            )
        )
    return sends


def route_after_summary(state: LayerState) -> Literal["residual", "close"]:
    """From layer 2 on, call the residual agent; else close the layer."""
    if state["settings"]["residual"] and state["layer"] > 1:
        return "residual"
    return "close"


def route_after_layer(state: MoAState) -> Literal["layer", "finish"]:
    """Run another layer unless the last one stopped or the depth is reached."""
    layers = state["layers"]
    if layers[-1]["stopped"] or len(layers) >= state["settings"]["max_layers"]:
        return "finish"
    return "layer"
