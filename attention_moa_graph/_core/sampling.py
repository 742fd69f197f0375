"""`Sampling`: what every model call is asked to generate, by role.

Temperatures, token caps, stop sequences and the repeat penalty go to each
call as call-time parameters; how the call is made (retries, time limits, the
cap) is the `CallPolicy`'s concern.
"""

import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from attention_moa_graph._knobs import Flag, Options, number, option, whole

SamplingRole = Literal[
    "draft",
    "cross_attention",
    "self_attention",
    "critique",
    "refine",
    "summary",
    "residual",
    "verdict",
]
"""The `moa_role` of each kind of call (`critique`: one batched call per critic,
which samples like a cross-attention call unless set apart)."""

ROLES: tuple[SamplingRole, ...] = typing.get_args(SamplingRole)

VERDICT_MAX_TOKENS = 32
"""A verdict is a few tokens of JSON; its calls are capped here unless
`role_max_tokens` says otherwise."""

MOST_TOKENS = 1_000_000
"""The largest token cap taken: no model writes more in one reply, so a larger
one is a mistake (an extra digit, a unit confused)."""

_temperature = number(0.0, 2.0)
_token_cap = whole(1, MOST_TOKENS)


def _by_role(
    value: Any, name: str, what: str, example: str, each: Callable[[Any, str], Any]
) -> dict[str, Any] | None:
    """A per-role option checked: a mapping of known roles, each value by `each`."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"`{name}` must map roles to {what}, e.g. {example}.")
    unknown = sorted(set(value) - set(ROLES))
    if unknown:
        raise ValueError(
            f"`{name}` must map roles ({', '.join(ROLES)}) to {what}; "
            f"{unknown} are no roles."
        )
    return {role: each(given, f"{name}[{role!r}]") for role, given in value.items()}


def _role_temperatures(value: Any, name: str) -> dict[str, float] | None:
    example = "{'draft': 0.7, 'summary': 0.0}"
    return _by_role(value, name, "temperatures", example, _temperature)


def _role_caps(value: Any, name: str) -> dict[str, int] | None:
    example = "{'cross_attention': 80}"
    return _by_role(value, name, "token counts", example, _token_cap)


MOST_STOPS = 4
"""The most stop sequences a call takes (OpenAI's limit)."""


def _stops(given: Any, name: str) -> tuple[str, ...]:
    texts = (given,) if isinstance(given, str) else given
    if (
        not isinstance(texts, (list, tuple))
        or not 1 <= len(texts) <= MOST_STOPS
        or not all(isinstance(t, str) and t for t in texts)
    ):
        raise ValueError(
            f"`{name}` must be 1 to {MOST_STOPS} non-empty strings; got {given!r}."
        )
    return tuple(texts)


def _role_stops(value: Any, name: str) -> dict[str, tuple[str, ...]] | None:
    example = "{'summary': ['\\nQuestion:']}"
    return _by_role(value, name, "stop sequences", example, _stops)


@dataclass(frozen=True, kw_only=True)
class Sampling(Options):
    """What each model call is asked for: temperatures, token caps, repeat penalty.

    Example:
        >>> from attention_moa_graph import Sampling
        >>> Sampling(temperature=0.2, role_max_tokens={"summary": 200}).role_max_tokens
        {'summary': 200}
    """

    temperature: float | None = option(
        None,
        doc="Sampling temperature of every call, passed at call time; None keeps "
        "each model's own. A run's temperature applies to all its calls.",
        check=_temperature,
        flag=Flag(("-t", "--temperature"), metavar="T"),
        example=0.7,
        run="any",
        baselines=True,
    )
    temperatures: Mapping[SamplingRole, float] | None = option(
        None,
        doc="Per-role temperatures (`draft`, `cross_attention`, `self_attention`, "
        "`critique` (batched), `refine`, `summary`, `residual`, `verdict`), applied "
        "after `temperature`; a batched critique takes `cross_attention`'s unless "
        "given its own.",
        check=_role_temperatures,
        flag=Flag(("--role-temperature",), metavar="ROLE=T"),
        example={"summary": 0.0},
        run="any",
    )
    max_tokens: int | None = option(
        None,
        doc="Most tokens a model may write in one call (passed to every call as "
        "`max_tokens`); None: each model's own limit.",
        check=whole(1, MOST_TOKENS, optional=True),
        flag=Flag(("--max-tokens",), metavar="N"),
        example=512,
        run="any",
        baselines=True,
    )
    role_max_tokens: Mapping[SamplingRole, int] | None = option(
        None,
        doc="Per-role caps on the tokens of each call (same roles as "
        "`temperatures`), applied after `max_tokens`; e.g. shorter critiques.",
        check=_role_caps,
        flag=Flag(("--role-max-tokens",), metavar="ROLE=N"),
        example={"cross_attention": 80},
        run="any",
    )
    role_stop: Mapping[SamplingRole, tuple[str, ...]] | None = option(
        None,
        doc="Per-role stop sequences (1 to 4 a role; same roles as "
        "`temperatures`): a call ends before the first it writes, e.g. before a "
        "small model starts copying the prompt's own headings.",
        check=_role_stops,
        flag=Flag(("--role-stop",), metavar="ROLE=TEXT"),
        example={"draft": ("\nThe user's latest message:",)},
        run="any",
    )
    repeat_penalty: float | None = option(
        None,
        doc="Sampling penalty on repeated tokens (1.0: none), which keeps small "
        "models out of loops. OpenAI-protocol servers that take it (llama.cpp, "
        "vLLM) get it in each call; other models refuse it before any call.",
        check=number(0.5, 2.0),
        flag=Flag(("--repeat-penalty",), metavar="P"),
        example=1.1,
        run="any",
        baselines=True,
    )


def role_params(built: Sampling, run: Mapping[str, Any]) -> dict[str, Any]:
    """`moa_role` -> the call-time parameters of that role's calls in one run.

    `run` holds the sampling options the run's context overrides. Temperatures
    stack: the built `temperature`, the built per-role ones, then the run's
    `temperature` (which replaces every built one) and the run's per-role
    ones. A batched critique samples like a cross-attention call.
    """
    temperatures: dict[str, float] = {}
    layers: tuple[Mapping[str, Any], ...] = (
        {"temperature": built.temperature, "temperatures": built.temperatures},
        run,
    )
    for layer in layers:
        if layer.get("temperature") is not None:
            temperatures = dict.fromkeys(ROLES, float(layer["temperature"]))
        temperatures.update(layer.get("temperatures") or {})
    own = {**(built.temperatures or {}), **(run.get("temperatures") or {})}
    if "cross_attention" in temperatures and "critique" not in own:
        temperatures["critique"] = temperatures["cross_attention"]
    temperatures.setdefault("verdict", 0.0)  # a judgement, not a composition
    max_tokens = run.get("max_tokens") or built.max_tokens
    penalty = run.get("repeat_penalty") or built.repeat_penalty
    caps = {**(built.role_max_tokens or {}), **(run.get("role_max_tokens") or {})}
    stops = {**(built.role_stop or {}), **(run.get("role_stop") or {})}
    params: dict[str, Any] = {}
    for role in ROLES:
        chosen: dict[str, Any] = {}
        if role in temperatures:
            chosen["temperature"] = temperatures[role]
        cap = caps.get(role, VERDICT_MAX_TOKENS if role == "verdict" else max_tokens)
        if cap is not None:
            chosen["max_tokens"] = cap
        if penalty is not None:
            chosen["repeat_penalty"] = penalty
        if role in stops:
            chosen["stop"] = list(stops[role])
        params[role] = chosen
    return params
