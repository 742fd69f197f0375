"""`MoAOptions`: every option of the ensemble, each declared once with its knob.

The keyword form `create_attention_moa(proposers, aggregator=..., max_layers=2,
max_tokens=512)` sets these options by name; `MoAOptions(...)` and
`CallPolicy(...)` build them as objects. The context form, the chat model, the
command line, the evaluation systems and the README's table are derived from
the declarations below.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from attention_moa_graph._calls.policy import CallPolicy
from attention_moa_graph._core.prompts import DEFAULT_PROMPTS, MoAPrompts
from attention_moa_graph._core.state import ROLES, Role
from attention_moa_graph._knobs import (
    Flag,
    Options,
    group,
    instance_of,
    number,
    one_of,
    option,
    pairs,
    switch,
    whole,
)

MAX_LAYERS = 32
"""A sanity bound: each layer costs N² + 2N + 2 calls."""

MAX_AGENTS = 16
"""More agents than this make N² critiques per layer; almost surely a mistake."""

CritiqueMode = Literal["pairwise", "batched"]
StopDecision = Literal["verdict", "signal"]

VERDICT_MAX_TOKENS = 32
"""A verdict is a few tokens of JSON; its calls are capped here unless
`role_max_tokens` says otherwise."""

_temperature = number(0.0, 2.0)
_token_cap = whole(1)


def _role_temperatures(value: Any, name: str) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(
            f"`{name}` must map roles to numbers, e.g. "
            "{'draft': 0.7, 'summary': 0.0}."
        )
    unknown = sorted(set(value) - set(ROLES))
    if unknown:
        raise ValueError(
            f"`{name}` must map roles ({', '.join(ROLES)}) to temperatures; "
            f"{unknown} are no roles."
        )
    return {role: _temperature(t, f"{name}[{role!r}]") for role, t in value.items()}


def _role_caps(value: Any, name: str) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - set(ROLES):
        raise ValueError(
            f"`{name}` must map roles ({', '.join(ROLES)}) to token counts, e.g. "
            f"{{'cross_attention': 80}}; got {value!r}."
        )
    return {role: _token_cap(n, f"{name}[{role!r}]") for role, n in value.items()}


def _role_value(kind: type, example: str) -> Any:
    """`--role-... ROLE=VALUE`, the value converted to `kind`."""

    def parse(text: str) -> tuple[str, Any]:
        try:
            role, value = pairs(text)
            return role, kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected ROLE=VALUE such as {example}, got {text!r}"
            ) from None

    return parse


def _prompts_file(text: str) -> MoAPrompts:
    """`--prompts FILE`: a JSON object of the templates to replace."""
    try:
        overrides = json.loads(Path(text).read_text(encoding="utf-8"))
        if not isinstance(overrides, dict):
            raise ValueError("the file must hold a JSON object of stage: template")
        return replace(DEFAULT_PROMPTS, **overrides)
    except (OSError, ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(
            f"cannot use prompts from {text}: {exc}"
        ) from None


@dataclass(frozen=True, kw_only=True)
class MoAOptions(Options):
    """Every option of Attention-MoA; `calls` holds how each model call is made.

    Example:
        >>> from attention_moa_graph import CallPolicy, MoAOptions
        >>> options = MoAOptions(max_layers=2, calls=CallPolicy(max_tokens=512))
        >>> options.replace(temperature=0.2).get("max_tokens")
        512
    """

    max_layers: int = option(
        3,
        doc="Layers to run at most.",
        check=whole(1, MAX_LAYERS),
        flag=Flag(("-l", "--layers"), parse=int, metavar="N"),
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
        flag=Flag(("--prompts",), parse=_prompts_file, metavar="FILE"),
        example=replace(DEFAULT_PROMPTS, summary="Merge these answers.\n\n{responses}"),
        baselines=True,
        shown="DEFAULT_PROMPTS",
    )
    temperature: float | None = option(
        None,
        doc="Sampling temperature of every call, passed at call time; None keeps "
        "each model's own. A run's temperature applies to all its calls.",
        check=_temperature,
        flag=Flag(("-t", "--temperature"), parse=float, metavar="T"),
        example=0.7,
        run="any",
        baselines=True,
    )
    temperatures: Mapping[Role, float] | None = option(
        None,
        doc="Per-role temperatures (`draft`, `cross_attention`, `self_attention`, "
        "`refine`, `summary`, `residual`), applied after `temperature`.",
        check=_role_temperatures,
        flag=Flag(
            ("--role-temperature",),
            parse=_role_value(float, "summary=0.2"),
            metavar="ROLE=T",
            repeat=dict,
        ),
        example={"summary": 0.0},
        run="any",
    )
    role_max_tokens: Mapping[Role, int] | None = option(
        None,
        doc="Per-role caps on the tokens of each call (same roles as "
        "`temperatures`), applied after `max_tokens`; e.g. shorter critiques. "
        "Batched critiques use `max_tokens`.",
        check=_role_caps,
        flag=Flag(
            ("--role-max-tokens",),
            parse=_role_value(int, "cross_attention=80"),
            metavar="ROLE=N",
            repeat=dict,
        ),
        example={"cross_attention": 80},
        run="any",
    )
    min_agents: int = option(
        1,
        doc="Fewest agents a layer may go on with when some fail after their "
        "retries; below it the failed calls get one more try, then the run stops "
        "with `AgentsExhaustedError`.",
        check=whole(1, MAX_AGENTS),
        flag=Flag(("--min-agents",), parse=int, metavar="N"),
        example=2,
        answers=False,
    )
    calls: CallPolicy = group(CallPolicy())
    """How every model call is made: see `CallPolicy`."""

    def replace(self, **values: Any) -> MoAOptions:
        """A copy with some options (nested ones included) set by name."""
        return MoAOptions.build(self, where="MoAOptions.replace()", **values)


def role_params(options: MoAOptions, context: Mapping[str, Any]) -> dict[str, Any]:
    """`moa_role` -> the call-time parameters of that role's calls in one run.

    Temperatures stack: the built `temperature`, the built per-role ones, then
    the run's `temperature` (which replaces every built one) and the run's
    per-role ones. A batched critique samples like a cross-attention call.
    """
    temperatures: dict[str, float] = {}
    built: dict[str, Any] = {
        "temperature": options.temperature,
        "temperatures": options.temperatures,
    }
    for layer in (built, context):
        if layer.get("temperature") is not None:
            temperatures = dict.fromkeys(ROLES, float(layer["temperature"]))
        temperatures.update(layer.get("temperatures") or {})
    if "cross_attention" in temperatures:
        temperatures["critique"] = temperatures["cross_attention"]
    temperatures.setdefault("verdict", 0.0)  # a judgement, not a composition
    max_tokens = context.get("max_tokens") or options.calls.max_tokens
    penalty = context.get("repeat_penalty") or options.calls.repeat_penalty
    caps = {
        **(options.role_max_tokens or {}),
        **(context.get("role_max_tokens") or {}),
    }
    params: dict[str, Any] = {}
    for role in (*ROLES, "critique"):
        chosen: dict[str, Any] = {}
        if role in temperatures:
            chosen["temperature"] = temperatures[role]
        cap = caps.get(role, VERDICT_MAX_TOKENS if role == "verdict" else max_tokens)
        if cap is not None:
            chosen["max_tokens"] = cap
        if penalty is not None:
            chosen["repeat_penalty"] = penalty
        params[role] = chosen
    return params
