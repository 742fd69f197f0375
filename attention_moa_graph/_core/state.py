"""Graph state: the public input/output schemas, layer-private state and reducers."""

import operator
from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import NotRequired, TypedDict

from attention_moa_graph._calls.usage import CallRecord, UsageReport
from attention_moa_graph._core.options import MoAOptionsDict

StopReason = Literal["early_stop", "agreement", "token_budget", "max_layers"]


class LayerRecord(TypedDict):
    """What one layer did; appended to `layers` when the layer ends."""

    layer: int
    """The layer's number, from 1."""
    drafts: dict[str, str]
    """Agent name -> its draft."""
    critiques: dict[str, dict[str, str]]
    """Target -> critic -> suggestions; critic == target is self-attention."""
    refined: dict[str, str]
    """Agent name -> its refined answer (empty when both attentions are off)."""
    summary: str
    """The summary agent's merge of the refined answers (`s_k`)."""
    residual: str | None
    """The residual agent's raw reply, or None when no residual call was made."""
    output: str
    """The layer's output `o_k`: the residual synthesis, else the summary."""
    verdict: str | None
    """The verdict call's raw reply (`{"better": ...}`), or None when none was made."""
    converged: bool
    """True when the summary repeated the previous round (from layer 2 on)."""
    stopped: bool
    """True when the loop ended here early: converged rounds, a verdict of
    `{"better": false}`, (`stop_decision="signal"`) the stop signal, or drafts
    that agreed (`agreement`)."""
    agreed: NotRequired[bool]
    """True when the layer's drafts agreed (`agreement`): it skipped its
    critiques and refinements, and the run ended with its summary."""
    failures: dict[str, str]
    """Agent name -> what failed, for agents dropped from this layer after retries."""
    late_critiques: list[str]
    """`critic->target` critiques left out after their deadline.

    `critique_deadline`, else `stage_deadline`.
    """
    late_agents: dict[str, str]
    """Agent name -> the stage (`draft` or `refine`) it missed `stage_deadline` in.

    A late draft keeps the agent out of the rest of the layer; after a late
    refinement the summary merges the agent's draft instead.
    """
    usage: UsageReport
    """Calls and tokens of this layer."""
    flags: NotRequired[dict[str, list[str]]]
    """Output -> what the guards saw in it, for replies they flagged: `repeated`
    (trimmed at its first repetition) and `cut` (stopped at its token cap).
    Outputs are named `role:agent`, cross-attention ones `role:critic->target`."""


def critique_key(critic: str, target: str) -> str:
    """How a critique is named in `late_critiques`."""
    return f"{critic}->{target}"


def merge_dicts(left: dict[str, str], right: dict[str, str]) -> dict[str, str]:
    """Merge per-agent results written by parallel branches."""
    return {**left, **right}


def merge_lists(
    left: dict[str, list[str]], right: dict[str, list[str]]
) -> dict[str, list[str]]:
    """Merge stage -> agents maps; a stage written again replaces its list."""
    return {**left, **right}


def merge_critiques(
    left: dict[str, dict[str, str]], right: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """Merge target -> critic -> suggestion maps written by parallel critics."""
    merged = {target: dict(by_critic) for target, by_critic in left.items()}
    for target, by_critic in right.items():
        merged.setdefault(target, {}).update(by_critic)
    return merged


class MoAInput(TypedDict):
    """What a run takes: the conversation, whose last message is the user's turn."""

    messages: Annotated[list[AnyMessage], add_messages]
    """LangChain messages or `(role, content)` tuples; appended to the thread."""


class MoAOutput(TypedDict):
    """What a run returns."""

    messages: Annotated[list[AnyMessage], add_messages]
    """The conversation, ending with the ensemble's `AIMessage`."""
    final_answer: str
    """The text of that final message."""
    stop_reason: StopReason
    """Why the loop ended: `agreement` (the drafts of the last layer agreed),
    `early_stop` (the round was no better than the one before), `token_budget`
    (the run's tokens reached the budget) or `max_layers`."""
    layers: Annotated[list[LayerRecord], operator.add]
    """One record per layer run for the latest user turn.

    Appended to (a layer writes only its own record, so that a checkpoint's
    pending writes stay one record long); reset by each new turn.
    """
    usage: UsageReport
    """Calls and tokens of the latest user turn, by role and by agent."""


class RunSettings(TypedDict):
    """What one run does: the built options narrowed by its `MoAContext`.

    Written once per user turn by `prepare`, so that a resumed run keeps the
    settings it started with.
    """

    agents: list[str]
    """The proposers' names for this run, in order."""
    models: dict[str, str]
    """Agent name -> model spec chosen for this run (empty: the built models)."""
    aggregator_model: str | None
    """The aggregator's model spec for this run, or None for the built one."""
    options: MoAOptionsDict
    """The run's value of every option held as plain data (all but `prompts`,
    `retry_policy` and the groups): the built ones, narrowed by the context."""
    params: dict[str, dict[str, Any]]
    """`moa_role` -> the call-time model parameters of that role's calls."""
    tools: NotRequired[list[dict[str, Any]]]
    """The run's tools as OpenAI function schemas (empty: none)."""
    tool_choice: NotRequired[str]
    """`auto`, `none`, `required` or the name of the tool to call."""
    response_format: NotRequired[dict[str, Any] | None]
    """OpenAI's `response_format` for the summary and residual replies, if any."""
    notes: NotRequired[dict[str, str]]
    """Stage kind (`plan`, `review`, `decision`) -> the note a run with tools
    adds to that stage's instructions (see `tools.tool_notes`)."""


class MoAState(MoAInput, MoAOutput):
    """The full state of the outer graph."""

    settings: RunSettings
    """Written once per user turn by `prepare`; read by every layer."""


class LayerInput(TypedDict):
    """What the layer subgraph receives from the outer loop."""

    messages: list[AnyMessage]
    layer: int
    history: list[str]
    """Outputs of the earlier layers of this turn, oldest first."""
    settings: RunSettings


Stage = Literal["draft", "critique", "refine"]


class LayerState(TypedDict):
    """The layer subgraph's state, returned whole to the outer loop at its end."""

    messages: list[AnyMessage]
    layer: int
    history: list[str]
    settings: RunSettings
    drafts: Annotated[dict[str, str], merge_dicts]
    critiques: Annotated[dict[str, dict[str, str]], merge_critiques]
    refined: Annotated[dict[str, str], merge_dicts]
    summary: str
    residual: NotRequired[str]
    verdict: NotRequired[str]
    calls: Annotated[list[CallRecord], operator.add]
    failures: Annotated[dict[str, str], merge_dicts]
    """Agent name -> its failed call, written by the error handlers."""
    late: Annotated[list[str], operator.add]
    """`critique_key`s of critiques cut off by their deadline."""
    late_agents: Annotated[dict[str, str], merge_dicts]
    """Agent name -> the stage whose deadline its call missed."""
    live: Annotated[dict[str, list[str]], merge_lists]
    """Stage -> the agents still in the layer after it, in the run's agent order.

    Written by the stage's gather node; the routers read it.
    """


class DraftTask(TypedDict):
    """`Send` payload of one draft."""

    agent: str
    layer: int
    messages: list[AnyMessage]
    reference: str | None
    params: dict[str, Any]
    """Call-time model parameters: temperature, token cap (see `role_params`)."""
    model: str | None
    """The agent's model spec for this run, when the context chose one."""
    strict: bool
    """A second try after too many agents failed: a failure now stops the run."""
    tools_note: NotRequired[str]
    """With tools: the note added to the stage's instructions."""


class CritiqueTask(TypedDict):
    """`Send` payload of one critique; `critic == target` for self-attention."""

    critic: str
    target: str
    layer: int
    messages: list[AnyMessage]
    own_answer: str
    target_answer: str
    params: dict[str, Any]
    model: str | None
    strict: bool
    tools_note: NotRequired[str]
    """With tools: the note added to the stage's instructions."""


class BatchedCritiqueTask(TypedDict):
    """`Send` payload of one critic's batched critique of several drafts."""

    critic: str
    targets: list[str]
    """The agents whose drafts are reviewed, in order (may include the critic)."""
    layer: int
    messages: list[AnyMessage]
    own_answer: str
    target_answers: list[str]
    params: dict[str, Any]
    model: str | None
    strict: bool
    tools_note: NotRequired[str]
    """With tools: the note added to the stage's instructions."""


class RefineTask(TypedDict):
    """`Send` payload of one refinement."""

    agent: str
    layer: int
    messages: list[AnyMessage]
    draft: str
    suggestions: list[str]
    params: dict[str, Any]
    model: str | None
    strict: bool
    tools_note: NotRequired[str]
    """With tools: the note added to the stage's instructions."""
