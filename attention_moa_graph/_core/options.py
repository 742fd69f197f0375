"""`MoAOptions`: every option of the ensemble, each declared once with its knob.

The keyword form `create_attention_moa(proposers, aggregator=..., max_layers=2,
max_tokens=512)` sets these options by name, typed by `MoAOptionsDict`;
`MoAOptions(...)`, `Sampling(...)` and `CallPolicy(...)` build them as objects.
The chat model, the command line, the evaluation systems and the README's
table are derived from the declarations; `MoAOptionsDict` and `MoAContext`
spell them again for type checkers, and a test keeps the three in step.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from langgraph.types import RetryPolicy
from typing_extensions import TypedDict

from attention_moa_graph._calls.policy import CallPolicy
from attention_moa_graph._core.prompts import DEFAULT_PROMPTS, MoAPrompts
from attention_moa_graph._core.sampling import Sampling, SamplingRole
from attention_moa_graph._knobs import (
    Flag,
    Options,
    group,
    instance_of,
    number,
    one_of,
    option,
    switch,
    whole,
)

MAX_LAYERS = 32
"""A sanity bound: each layer costs N² + 2N + 2 calls."""

MAX_AGENTS = 16
"""More agents than this make N² critiques per layer; almost surely a mistake."""

CritiqueMode = Literal["pairwise", "batched"]
StopDecision = Literal["verdict", "signal"]


@dataclass(frozen=True, kw_only=True)
class MoAOptions(Options):
    """Every option of Attention-MoA, in three groups by concern.

    The algorithm's options are its own fields; `sampling` holds what each
    call asks the model for and `calls` how each call is made. `build` and
    `replace` set any of them by its own name.

    Example:
        >>> from attention_moa_graph import MoAOptions, Sampling
        >>> options = MoAOptions(max_layers=2, sampling=Sampling(max_tokens=512))
        >>> options.replace(temperature=0.2).get("max_tokens")
        512
    """

    max_layers: int = option(
        3,
        doc="Layers to run at most.",
        check=whole(1, MAX_LAYERS),
        flag=Flag(("-l", "--layers"), metavar="N"),
        example=2,
        run="lower",
    )
    early_stopping: bool = option(
        True,
        doc="Let the loop end early when a round is no better than the one before "
        "(see `stop_decision`).",
        check=switch,
        flag=Flag(("--no-early-stopping",), negate=True),
        example=False,
        run="any",
    )
    cross_attention: bool = option(
        True,
        doc="Have each agent critique every peer's draft (needs two agents).",
        check=switch,
        flag=Flag(("--no-cross-attention",), negate=True),
        example=False,
        run="disable",
    )
    self_attention: bool = option(
        True,
        doc="Have each agent critique its own draft. With both attentions off a "
        "layer is plain MoA: drafts, then the summary.",
        check=switch,
        flag=Flag(("--no-self-attention",), negate=True),
        example=False,
        run="disable",
    )
    residual: bool = option(
        True,
        doc="Call the residual agent from layer 2 on; off, the answer is the last "
        "layer's summary.",
        check=switch,
        flag=Flag(("--no-residual",), negate=True),
        example=False,
        run="disable",
    )
    stop_decision: StopDecision = option(
        "verdict",
        doc="How the early stop is decided from layer 2 on. `verdict`: the loop "
        "stops when the latest summary repeats the previous round, or when a short "
        'verdict call of the residual agent answers JSON `{"better": false}` '
        "(schema-constrained where the server takes one); the residual call is then "
        "skipped. `signal`: the residual agent's reply may be the stop signal "
        "itself (the authors' scripts' design; small models rarely give it).",
        check=one_of("verdict", "signal"),
        flag=Flag(("--stop-decision",), metavar="{verdict,signal}"),
        example="signal",
    )
    critique_mode: CritiqueMode = option(
        "pairwise",
        doc="`pairwise`: one call per critic and target, as in the paper; "
        "`batched`: one call per critic reviewing all its targets, its reply split "
        "at its `[[answer N]]` marker lines (N calls per layer instead of N²; "
        "departs from the paper).",
        check=one_of("pairwise", "batched"),
        flag=Flag(("--critique-mode",), metavar="{pairwise,batched}"),
        example="batched",
    )
    agreement: float | None = option(
        None,
        doc="Stop at a layer whose drafts already agree: it skips its critiques and "
        "refinements, its summary merges the drafts, and the run ends there "
        "(`stop_reason` `agreement`). Drafts agree when their words are the same "
        "(case and punctuation aside), when all are short answers (12 words at "
        "most) ending on the same number, or when every two of them are at least "
        "this alike (0 to 1, word-sequence similarity). None: never, as in the "
        "paper. "
        "Departs from the paper.",
        check=number(0.0, 1.0),
        flag=Flag(("--agreement",), metavar="SIMILARITY"),
        example=0.9,
        run="any",
    )
    critique_peers: int | None = option(
        None,
        doc="Peers each agent critiques: the next K agents of the run, in turn "
        "(N*K cross-attention calls a layer instead of N(N-1)). None: every peer, "
        "as in the paper. Departs from the paper.",
        check=whole(1, MAX_AGENTS - 1, optional=True),
        flag=Flag(("--critique-peers",), metavar="K"),
        example=1,
        run="any",
    )
    token_budget: int | None = option(
        None,
        doc="Tokens a run may spend: the loop ends after the layer in which its "
        "calls' tokens reach this (`stop_reason` `token_budget`). None: no budget.",
        check=whole(1, optional=True),
        flag=Flag(("--token-budget",), metavar="TOKENS"),
        example=20_000,
        run="any",
    )
    prompts: MoAPrompts = option(
        DEFAULT_PROMPTS,
        doc="The stage templates; replace one with `dataclasses.replace("
        "DEFAULT_PROMPTS, summary=...)`, or on the command line with a JSON "
        "file of `{stage: template}`.",
        check=instance_of(
            MoAPrompts,
            "start from DEFAULT_PROMPTS with dataclasses.replace(DEFAULT_PROMPTS, "
            "summary=...)",
        ),
        flag=Flag(("--prompts",), metavar="FILE"),
        example=replace(DEFAULT_PROMPTS, summary="Merge these answers.\n\n{responses}"),
        baselines=True,
        shown="DEFAULT_PROMPTS",
    )
    min_agents: int = option(
        1,
        doc="Fewest agents a layer may go on with when some fail after their "
        "retries; below it the failed calls get one more try, then the run stops "
        "with `AgentsExhaustedError`.",
        check=whole(1, MAX_AGENTS),
        flag=Flag(("--min-agents",), metavar="N"),
        example=2,
        answers=False,
    )
    sampling: Sampling = group(Sampling())
    """What each call asks the model for: see `Sampling`."""
    calls: CallPolicy = group(CallPolicy())
    """How every model call is made: see `CallPolicy`."""

    def replace(self, **values: Any) -> "MoAOptions":
        """A copy with some options (nested ones included) set by name."""
        return MoAOptions.build(self, where="MoAOptions.replace()", **values)


class MoAOptionsDict(TypedDict, total=False):
    """Every option by name, for `**options` keywords (`create_attention_moa`).

    A type checker then refuses a misspelled option or a value of the wrong
    type. The groups may also be given whole (`sampling=`, `calls=`).
    """

    max_layers: int
    early_stopping: bool
    cross_attention: bool
    self_attention: bool
    residual: bool
    stop_decision: StopDecision
    critique_mode: CritiqueMode
    agreement: float | None
    critique_peers: int | None
    token_budget: int | None
    prompts: MoAPrompts
    min_agents: int
    sampling: Sampling
    temperature: float | None
    temperatures: Mapping[SamplingRole, float] | None
    max_tokens: int | None
    role_max_tokens: Mapping[SamplingRole, int] | None
    role_stop: Mapping[SamplingRole, tuple[str, ...]] | None
    repeat_penalty: float | None
    calls: CallPolicy
    retry_policy: RetryPolicy | None
    call_timeout: float | None
    hedge_after: float | None
    critique_deadline: float | None
    stage_deadline: float | None
    max_concurrent_calls: int | None
