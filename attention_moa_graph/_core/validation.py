"""Checks of the factories' arguments, each failing early with how to fix it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from langgraph.types import RetryPolicy

from attention_moa_graph._calls.models import (
    ModelLike,
    Proposer,
    resolve_agents,
    resolve_single,
)
from attention_moa_graph._calls.runner import CallLimit
from attention_moa_graph._core.config import (
    CRITIQUE_MODES,
    MAX_AGENTS,
    CritiqueMode,
    MoAConfig,
)
from attention_moa_graph._core.prompts import MoAPrompts
from attention_moa_graph._core.state import ROLES, Role

MAX_LAYERS = 32
"""A sanity bound: each layer costs N² + 2N + 2 calls."""


def check_seconds(name: str, value: object) -> float | None:
    """A positive number of seconds, or None (off)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(
            f"`{name}` must be a positive number of seconds or None, got {value!r}."
        )
    return float(value)


def call_limit(value: object) -> CallLimit | None:
    """A `CallLimit` for `max_concurrent_calls`, or None when unlimited."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            "`max_concurrent_calls` must be a whole number >= 1 or None, "
            f"got {value!r}."
        )
    return CallLimit(value)


def build_config(
    proposers: Sequence[ModelLike | Proposer],
    *,
    aggregator: ModelLike | Proposer,
    residual_model: ModelLike | Proposer | None,
    max_layers: int,
    early_stopping: bool,
    cross_attention: bool,
    self_attention: bool,
    residual: bool,
    prompts: MoAPrompts,
    temperature: float | None,
    temperatures: Mapping[Role, float] | None,
    call_timeout: float | None,
    hedge_after: float | None,
    critique_deadline: float | None,
    stage_deadline: float | None,
    max_concurrent_calls: int | None,
    critique_mode: CritiqueMode,
    min_agents: int,
    retry_policy: RetryPolicy | None,
) -> MoAConfig:
    """Check `create_attention_moa`'s arguments and freeze them in a `MoAConfig`."""
    if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
        raise ValueError(
            "`retry_policy` must be a langgraph.types.RetryPolicy or None, got "
            f"{type(retry_policy).__name__}."
        )
    agents = resolve_agents(proposers)
    if (
        isinstance(min_agents, bool)
        or not isinstance(min_agents, int)
        or not 1 <= min_agents <= len(agents)
    ):
        raise ValueError(
            f"`min_agents` must be a whole number from 1 to the number of "
            f"proposers ({len(agents)}), got {min_agents!r}."
        )
    call_timeout = check_seconds("call_timeout", call_timeout)
    hedge_after = check_seconds("hedge_after", hedge_after)
    critique_deadline = check_seconds("critique_deadline", critique_deadline)
    stage_deadline = check_seconds("stage_deadline", stage_deadline)
    if critique_mode not in CRITIQUE_MODES:
        raise ValueError(
            f"`critique_mode` must be one of {', '.join(map(repr, CRITIQUE_MODES))}, "
            f"got {critique_mode!r}."
        )
    if len(agents) > MAX_AGENTS:
        raise ValueError(
            f"{len(agents)} proposers would make {len(agents) ** 2} critique calls "
            f"per layer; use at most {MAX_AGENTS}."
        )
    if isinstance(max_layers, bool) or not isinstance(max_layers, int):
        raise ValueError(f"`max_layers` must be a whole number, got {max_layers!r}.")
    if not 1 <= max_layers <= MAX_LAYERS:
        raise ValueError(
            f"`max_layers` must be between 1 and {MAX_LAYERS}, got {max_layers}; "
            "max_layers=1 runs a single layer (no residual agent)."
        )
    switches = {
        "early_stopping": early_stopping,
        "cross_attention": cross_attention,
        "self_attention": self_attention,
        "residual": residual,
    }
    for switch, value in switches.items():
        if not isinstance(value, bool):
            raise ValueError(f"`{switch}` must be True or False, got {value!r}.")
    if cross_attention and len(agents) < 2:
        raise ValueError(
            "cross-attention needs at least two proposers to critique each other; "
            "add a proposer or pass cross_attention=False."
        )
    if not isinstance(prompts, MoAPrompts):
        raise ValueError(
            "`prompts` must be a MoAPrompts; start from DEFAULT_PROMPTS with "
            "dataclasses.replace(DEFAULT_PROMPTS, summary=...)."
        )
    agg = resolve_single(aggregator, "aggregator", "aggregator")
    res = (
        agg
        if residual_model is None
        else resolve_single(residual_model, "residual_model", "residual")
    )
    role_temperatures = check_temperatures(temperature, temperatures)
    return MoAConfig(
        agents=agents,
        aggregator=agg,
        residual_agent=res,
        prompts=prompts,
        max_layers=max_layers,
        early_stopping=early_stopping,
        cross_attention=cross_attention,
        self_attention=self_attention,
        residual=residual,
        temperatures=role_temperatures,
        min_agents=min_agents,
        retry_policy=retry_policy,
        call_timeout=call_timeout,
        hedge_after=hedge_after,
        critique_deadline=critique_deadline,
        stage_deadline=stage_deadline,
        call_limit=call_limit(max_concurrent_calls),
        critique_mode=critique_mode,
    )


def check_temperature(value: object, where: str) -> float:
    """A temperature from 0 to 2; `where` names the argument in the error."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0.0 <= value <= 2.0
    ):
        raise ValueError(f"`{where}` must be a number from 0 to 2, got {value!r}.")
    return float(value)


def check_temperatures(
    temperature: float | None, temperatures: Mapping[Role, float] | None
) -> dict[str, float]:
    """Role -> temperature: `temperature` for every role, then the overrides."""
    chosen: dict[str, float] = {}
    if temperature is not None:
        chosen = dict.fromkeys(ROLES, check_temperature(temperature, "temperature"))
    if temperatures is not None:
        if not isinstance(temperatures, Mapping):
            raise ValueError(
                "`temperatures` must map roles to numbers, e.g. "
                "{'draft': 0.7, 'summary': 0.0}."
            )
        unknown = sorted(set(temperatures) - set(ROLES))
        if unknown:
            raise ValueError(
                f"`temperatures` has unknown roles {unknown}; roles are {list(ROLES)}."
            )
        for role, value in temperatures.items():
            chosen[role] = check_temperature(value, f"temperatures[{role!r}]")
    return chosen
