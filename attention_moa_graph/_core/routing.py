"""Pure routing: `Send` fan-outs inside a layer, the stop test and the layer loop."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Literal, cast

from langgraph.graph import END
from langgraph.types import Send

from attention_moa_graph._calls.errors import AgentsExhaustedError
from attention_moa_graph._core.prompts import STOP_SIGNAL
from attention_moa_graph._core.state import (
    BatchedCritiqueTask,
    CritiqueTask,
    DraftTask,
    LayerState,
    MoAState,
    RefineTask,
    Role,
    critique_key,
)

_MARKUP = set("*_~`")


def strip_decoration(text: str) -> str:
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


_NORMALISED_SIGNAL = strip_decoration(STOP_SIGNAL).casefold()


def is_stop_signal(reply: str) -> bool:
    """Whether a residual reply is the stop signal itself, not text mentioning it.

    Example:
        >>> is_stop_signal("**NO_FURTHER_IMPROVEMENT.**")
        True
        >>> is_stop_signal("Round 2 adds nothing, so: NO_FURTHER_IMPROVEMENT")
        False
    """
    return strip_decoration(reply).casefold() == _NORMALISED_SIGNAL


def live_after_drafts(state: LayerState, agents: Sequence[str]) -> list[str]:
    """Agents that have a draft."""
    return [a for a in agents if a in state["drafts"]]


def expected_targets(state: LayerState, critic: str, live: Sequence[str]) -> list[str]:
    """The drafts a critic is to review in this run's critique stage."""
    settings = state["settings"]
    return [
        target
        for target in live
        if settings["self_attention" if target == critic else "cross_attention"]
    ]


def live_after_critiques(state: LayerState, agents: Sequence[str]) -> list[str]:
    """Agents with a draft whose every critique call succeeded (or was late).

    A critique cut off by the critique deadline is no failure of its critic.
    """
    live = live_after_drafts(state, agents)
    critiques = state.get("critiques", {})
    late = set(state.get("late", []))
    return [
        critic
        for critic in live
        if all(
            critic in critiques.get(target, {}) or critique_key(critic, target) in late
            for target in expected_targets(state, critic, live)
        )
    ]


def live_after_refine(state: LayerState, agents: Sequence[str]) -> list[str]:
    """Agents that made it through the refinement, or missed its deadline.

    An agent whose refinement was cut off by the stage deadline keeps its
    place: the summary merges its draft instead.
    """
    refined = state.get("refined", {})
    late = state.get("late_agents", {})
    return [
        a
        for a in live_after_critiques(state, agents)
        if a in refined or late.get(a) == "refine"
    ]


def _attention(state: LayerState) -> bool:
    settings = state["settings"]
    return settings["cross_attention"] or settings["self_attention"]


def live_at_end(state: LayerState, agents: Sequence[str]) -> list[str]:
    """Agents whose answer reaches the summary."""
    if _attention(state):
        return live_after_refine(state, agents)
    return live_after_drafts(state, agents)


def layer_answers(state: LayerState, agents: Sequence[str]) -> list[str]:
    """What the summary merges: live agents' refined answers, or drafts in plain MoA.

    An agent whose refinement missed the stage deadline contributes its draft.
    """
    drafts = state["drafts"]
    if not _attention(state):
        return [drafts[a] for a in live_at_end(state, agents)]
    refined = state.get("refined", {})
    return [refined.get(a, drafts[a]) for a in live_at_end(state, agents)]


def _draft(state: LayerState, agent: str, strict: bool) -> Send:
    history = state["history"]
    return Send(
        "draft",
        DraftTask(
            agent=agent,
            layer=state["layer"],
            messages=state["messages"],
            reference=history[-1] if history else None,
            temperature=state["settings"]["temperatures"].get("draft"),
            strict=strict,
            model=state["settings"]["models"].get(agent),
        ),
    )


def _critique(state: LayerState, critic: str, target: str, strict: bool) -> Send:
    role: Role = "self_attention" if critic == target else "cross_attention"
    drafts = state["drafts"]
    return Send(
        role,
        CritiqueTask(
            critic=critic,
            target=target,
            layer=state["layer"],
            messages=state["messages"],
            own_answer=drafts[critic],
            target_answer=drafts[target],
            temperature=state["settings"]["temperatures"].get(role),
            strict=strict,
            model=state["settings"]["models"].get(critic),
        ),
    )


def _refine(state: LayerState, agent: str, agents: Sequence[str], strict: bool) -> Send:
    received = state.get("critiques", {}).get(agent, {})
    return Send(
        "refine",
        RefineTask(
            agent=agent,
            layer=state["layer"],
            messages=state["messages"],
            draft=state["drafts"][agent],
            suggestions=[received[c] for c in agents if c in received],
            temperature=state["settings"]["temperatures"].get("refine"),
            strict=strict,
            model=state["settings"]["models"].get(agent),
        ),
    )


def _too_few(state: LayerState, live: Sequence[str]) -> bool:
    return len(live) < state["settings"]["min_agents"]


def _second_try(state: LayerState, sends: list[Send]) -> list[Send]:
    """The strict re-sends; with nothing left to retry the layer cannot go on."""
    if not sends:
        raise AgentsExhaustedError(
            state["layer"],
            dict(state.get("failures", {})),
            state["settings"]["min_agents"],
        )
    return sends


def fan_out_drafts(state: LayerState, agents: Sequence[str]) -> list[Send]:
    """One draft per agent; from layer 2 on, the previous output is the reference."""
    return [_draft(state, agent, strict=False) for agent in agents]


def _batched_critique(
    state: LayerState, critic: str, targets: Sequence[str], strict: bool
) -> Send:
    drafts = state["drafts"]
    return Send(
        "critique",
        BatchedCritiqueTask(
            critic=critic,
            targets=list(targets),
            layer=state["layer"],
            messages=state["messages"],
            own_answer=drafts[critic],
            target_answers=[drafts[t] for t in targets],
            temperature=state["settings"]["temperatures"].get("cross_attention"),
            model=state["settings"]["models"].get(critic),
            strict=strict,
        ),
    )


def fan_out_critiques(
    state: LayerState, agents: Sequence[str], *, batched: bool = False
) -> list[Send] | Literal["summarize"]:
    """All cross- and self-attention critiques at once, or straight to the summary.

    Pairwise (the paper): one call per (critic, target). Batched: one call
    per critic covering all its targets.
    If too few agents drafted, their drafts are sent once more in strict mode,
    where a failure stops the run (and a resumed run retries just those calls).
    """
    live = live_after_drafts(state, agents)
    if _too_few(state, live):
        return _second_try(
            state, [_draft(state, a, strict=True) for a in agents if a not in live]
        )
    if not _attention(state):
        return "summarize"
    if batched:
        return [
            _batched_critique(
                state, critic, expected_targets(state, critic, live), strict=False
            )
            for critic in live
        ]
    return [
        _critique(state, critic, target, strict=False)
        for critic in live
        for target in expected_targets(state, critic, live)
    ]


def fan_out_refinements(
    state: LayerState, agents: Sequence[str], *, batched: bool = False
) -> list[Send]:
    """One refinement per live agent, with the suggestions addressed to it."""
    live = live_after_critiques(state, agents)
    if _too_few(state, live):
        drafted = live_after_drafts(state, agents)
        critiques = state.get("critiques", {})
        missing = {
            critic: [
                target
                for target in expected_targets(state, critic, drafted)
                if critic not in critiques.get(target, {})
            ]
            for critic in drafted
            if critic not in live
        }
        if batched:
            sends = [
                _batched_critique(state, critic, targets, strict=True)
                for critic, targets in missing.items()
            ]
        else:
            sends = [
                _critique(state, critic, target, strict=True)
                for critic, targets in missing.items()
                for target in targets
            ]
        return _second_try(state, sends)
    return [_refine(state, agent, agents, strict=False) for agent in live]


def route_after_refine(
    state: LayerState, agents: Sequence[str]
) -> list[Send] | Literal["summarize"]:
    """Go on to the summary, or retry failed refinements once in strict mode."""
    live = live_after_refine(state, agents)
    if _too_few(state, live):
        return _second_try(
            state,
            [
                _refine(state, agent, agents, strict=True)
                for agent in live_after_critiques(state, agents)
                if agent not in live
            ],
        )
    return "summarize"


def route_after_summary(state: LayerState) -> Literal["residual", "__end__"]:
    """From layer 2 on, call the residual agent; else the layer is done."""
    if state["settings"]["residual"] and state["layer"] > 1:
        return "residual"
    return cast(Literal["__end__"], END)


def route_after_layer(state: MoAState) -> Literal["layer", "finish"]:
    """Run another layer unless the last one stopped or the depth is reached."""
    layers = state["layers"]
    if layers[-1]["stopped"] or len(layers) >= state["settings"]["max_layers"]:
        return "finish"
    return "layer"
