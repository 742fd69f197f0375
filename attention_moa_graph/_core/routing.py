"""Pure routing: which agents are still in a layer, the fan-outs and the loop edge.

The gather node after each stage records which agents are still in the layer
(`live_after`, written to `live`); the routers after it only read that. When
fewer than `min_agents` are left, a router sends the missing calls once more
as strict second tries (the `second_try` edges), where a failure stops the
run; a resumed run then retries just those calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar, cast

from langgraph.graph import END
from langgraph.types import Send

from attention_moa_graph._calls.errors import AgentsExhaustedError
from attention_moa_graph._core.state import (
    DraftTask,
    LayerState,
    MoAState,
    RefineTask,
    RunSettings,
    Stage,
    critique_key,
)
from attention_moa_graph._core.stop import converged, drafts_agree, parse_verdict

SECOND_TRY = "second_try"
"""The label of the edges that carry strict second tries."""


class Critiques(Protocol):
    """How a layer's critique stage sends its calls (pairwise or batched)."""

    def sends(
        self, state: LayerState, assignments: dict[str, list[str]], strict: bool
    ) -> list[Send]:
        """The calls for critic -> the targets whose drafts it reviews."""
        ...


def attention_on(state: LayerState) -> bool:
    """Whether this run critiques and refines (else the layer is plain MoA)."""
    options = state["settings"]["options"]
    return options["cross_attention"] or options["self_attention"]


def residual_runs(state: LayerState) -> bool:
    """Whether this layer of this run ends with a residual call."""
    return state["settings"]["options"]["residual"] and state["layer"] > 1


def agreed(state: LayerState) -> bool:
    """Whether this layer's drafts agree, under the run's `agreement` option."""
    similarity = state["settings"]["options"].get("agreement")
    if similarity is None or "draft" not in state.get("live", {}):
        return False
    drafts = [state["drafts"][a] for a in state["live"]["draft"]]
    return drafts_agree(drafts, similarity)


def peers(critic: str, drafted: Sequence[str], count: int | None) -> list[str]:
    """The peers `critic` reviews: all, or the next `count` in the run's order.

    Example:
        >>> peers("b", ["a", "b", "c", "d"], 2)
        ['c', 'd']
        >>> peers("d", ["a", "b", "c", "d"], 2)
        ['a', 'b']
    """
    others = [a for a in drafted if a != critic]
    if count is None or critic not in drafted:
        return others
    start = list(drafted).index(critic)
    ring = [*drafted[start + 1 :], *drafted[:start]]
    return ring[:count]


def assignments(state: LayerState, critics: Sequence[str]) -> dict[str, list[str]]:
    """Critic -> the drafts it reviews this run: peers' and/or its own.

    With `critique_peers` each critic reviews only the next K peers, in turn.
    """
    options = state["settings"]["options"]
    drafted = state["live"]["draft"]
    found = {}
    for critic in critics:
        chosen = set(
            peers(critic, drafted, options.get("critique_peers"))
            if options["cross_attention"]
            else []
        )
        if options["self_attention"]:
            chosen.add(critic)
        found[critic] = [target for target in drafted if target in chosen]
    return found


def live_after(state: LayerState, stage: Stage) -> list[str]:
    """The agents still in the layer once `stage`'s calls are all back.

    A draft must exist. A critic stays if every critique it owed came back,
    or missed its deadline (no failure of the critic). An agent stays after
    refining if it refined, or its refinement missed the stage deadline (the
    summary then merges its draft).
    """
    if stage == "draft":
        return [a for a in state["settings"]["agents"] if a in state["drafts"]]
    if stage == "critique":
        critiques = state.get("critiques", {})
        late = set(state.get("late", []))
        owed = assignments(state, state["live"]["draft"])
        return [
            critic
            for critic, targets in owed.items()
            if all(
                critic in critiques.get(t, {}) or critique_key(critic, t) in late
                for t in targets
            )
        ]
    refined = state.get("refined", {})
    late_agents = state.get("late_agents", {})
    return [
        a
        for a in state["live"]["critique"]
        if a in refined or late_agents.get(a) == "refine"
    ]


def refines(state: LayerState) -> bool:
    """Whether this layer critiques and refines: attention on, drafts not agreed."""
    return attention_on(state) and not agreed(state)


def final_agents(state: LayerState) -> list[str]:
    """The agents whose answers reach the summary."""
    return state["live"]["refine" if refines(state) else "draft"]


def layer_answers(state: LayerState) -> list[str]:
    """What the summary merges: refined answers, or drafts in plain MoA.

    An agent whose refinement missed the stage deadline contributes its draft.
    """
    drafts = state["drafts"]
    refined = state.get("refined", {}) if refines(state) else {}
    return [refined.get(a, drafts[a]) for a in final_agents(state)]


def _draft(state: LayerState, agent: str, strict: bool) -> Send:
    history = state["history"]
    settings = state["settings"]
    return Send(
        "draft",
        noted(
            DraftTask(
                agent=agent,
                layer=state["layer"],
                messages=state["messages"],
                reference=history[-1] if history else None,
                params=settings["params"]["draft"],
                strict=strict,
                model=settings["models"].get(agent),
            ),
            settings,
            "plan",
        ),
    )


Task = TypeVar("Task", bound=Mapping[str, Any])


def noted(task: Task, settings: RunSettings, kind: str) -> Task:
    """`task` with the run's tools note for this kind of stage, if it has one."""
    note = settings.get("notes", {}).get(kind)
    if note:
        cast(dict[str, Any], task)["tools_note"] = note
    return task


def _refine(state: LayerState, agent: str, strict: bool) -> Send:
    received = state.get("critiques", {}).get(agent, {})
    settings = state["settings"]
    return Send(
        "refine",
        noted(
            RefineTask(
                agent=agent,
                layer=state["layer"],
                messages=state["messages"],
                draft=state["drafts"][agent],
                suggestions=[received[c] for c in settings["agents"] if c in received],
                params=settings["params"]["refine"],
                strict=strict,
                model=settings["models"].get(agent),
            ),
            settings,
            "plan",
        ),
    )


def _too_few(state: LayerState, live: Sequence[str]) -> bool:
    return len(live) < state["settings"]["options"]["min_agents"]


def _second_try(state: LayerState, sends: list[Send]) -> list[Send]:
    """The strict re-sends; with nothing left to retry the layer cannot go on."""
    if not sends:
        raise AgentsExhaustedError(
            state["layer"],
            dict(state.get("failures", {})),
            state["settings"]["options"]["min_agents"],
        )
    return sends


def fan_out_drafts(state: LayerState) -> list[Send]:
    """One draft per agent; from layer 2 on, the previous output is the reference."""
    return [_draft(state, agent, strict=False) for agent in state["settings"]["agents"]]


def route_after_drafts(
    state: LayerState, critiques: Critiques | None
) -> list[Send] | Literal["summarize"]:
    """All critiques at once, straight to the summary (plain MoA), or a second try.

    `critiques` is None when the graph was built without either attention.
    """
    live = state["live"]["draft"]
    if _too_few(state, live):
        missing = [a for a in state["settings"]["agents"] if a not in live]
        return _second_try(state, [_draft(state, a, strict=True) for a in missing])
    if critiques is None or not refines(state):
        return "summarize"
    return critiques.sends(state, assignments(state, live), strict=False)


def route_after_critiques(state: LayerState, critiques: Critiques) -> list[Send]:
    """One refinement per live agent, or a second try of the missing critiques."""
    live = state["live"]["critique"]
    if not _too_few(state, live):
        return [_refine(state, agent, strict=False) for agent in live]
    received = state.get("critiques", {})
    missing = {
        critic: [t for t in targets if critic not in received.get(t, {})]
        for critic, targets in assignments(state, state["live"]["draft"]).items()
        if critic not in live
    }
    return _second_try(state, critiques.sends(state, missing, strict=True))


def route_after_refine(state: LayerState) -> list[Send] | Literal["summarize"]:
    """Go on to the summary, or retry failed refinements once in strict mode."""
    live = state["live"]["refine"]
    if not _too_few(state, live):
        return "summarize"
    missing = [a for a in state["live"]["critique"] if a not in live]
    return _second_try(state, [_refine(state, a, strict=True) for a in missing])


def decides_by_verdict(state: LayerState, verdict: bool) -> bool:
    """Whether this layer's stop is decided by converged rounds and a verdict."""
    return (
        verdict
        and residual_runs(state)
        and state["settings"]["options"]["early_stopping"]
    )


def route_after_summary(
    state: LayerState, verdict: bool = False
) -> Literal["residual", "verdict", "__end__"]:
    """From layer 2 on, call the residual agent (after the verdict, if used).

    `verdict` says the graph decides stops by verdict. Rounds that converged
    stop the loop at once: the summary repeats the previous round, so it
    cannot be better, and neither call is needed.
    """
    if agreed(state):  # the run ends with this layer's summary
        return cast(Literal["__end__"], END)
    if decides_by_verdict(state, verdict):
        if converged(state["history"][-1], state["summary"]):
            return cast(Literal["__end__"], END)
        return "verdict"
    return "residual" if residual_runs(state) else cast(Literal["__end__"], END)


def route_after_verdict(state: LayerState) -> Literal["residual", "__end__"]:
    """Stop when the verdict says the latest round is not better; else synthesise."""
    if parse_verdict(state.get("verdict", "")) is False:
        return cast(Literal["__end__"], END)
    return "residual"


def over_budget(state: MoAState) -> bool:
    """Whether the run's calls have spent its `token_budget`."""
    budget = state["settings"]["options"].get("token_budget")
    return budget is not None and state["usage"]["total"]["total_tokens"] >= budget


def route_after_layer(state: MoAState) -> Literal["layer", "finish"]:
    """Run another layer unless one ended the run, or the depth or budget is spent."""
    layers = state["layers"]
    if (
        layers[-1]["stopped"]
        or len(layers) >= state["settings"]["options"]["max_layers"]
        or over_budget(state)
    ):
        return "finish"
    return "layer"
