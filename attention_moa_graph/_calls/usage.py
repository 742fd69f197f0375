"""Token accounting: per-call records summed by role and by agent."""

from collections.abc import Iterable, Mapping

from typing_extensions import NotRequired, TypedDict


class TokenUsage(TypedDict):
    """Calls and tokens, summed over some set of model calls."""

    calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_input_tokens: NotRequired[int]
    """Of `input_tokens`, those the provider read from its prompt cache, as it
    reports them (OpenAI's and llama.cpp's `cached_tokens`, Anthropic's cache
    reads); 0 where it reports none."""


class UsageReport(TypedDict):
    """Token usage broken down by role and by agent."""

    total: TokenUsage
    """Every call counted once."""
    by_role: dict[str, TokenUsage]
    """Keyed by `moa_role` (`draft`, `cross_attention`, ...)."""
    by_agent: dict[str, TokenUsage]
    """Keyed by agent name: proposers, then the aggregator (and residual agent)."""
    by_model: dict[str, TokenUsage]
    """Keyed by model: its spec string, or an instance's model name."""


class CallRecord(TypedDict):
    """One model call, as recorded by the node that made it."""

    role: str
    """The call's `moa_role`."""
    agent: str
    model: str
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_input_tokens: NotRequired[int]
    output: NotRequired[str]
    """Which output the call wrote: `role:agent`, `cross_attention:critic->target`."""
    flags: NotRequired[list[str]]
    """What the guards saw in the reply: `repeated` (trimmed), `cut` (at its cap)."""


def empty_usage() -> TokenUsage:
    """Zero calls, zero tokens."""
    return TokenUsage(
        calls=0, input_tokens=0, output_tokens=0, total_tokens=0, cached_input_tokens=0
    )


def _add(into: TokenUsage, other: TokenUsage) -> None:
    into["calls"] += other["calls"]
    into["input_tokens"] += other["input_tokens"]
    into["output_tokens"] += other["output_tokens"]
    into["total_tokens"] += other["total_tokens"]
    # Records saved before the field existed have none.
    into["cached_input_tokens"] = into.get("cached_input_tokens", 0) + other.get(
        "cached_input_tokens", 0
    )


def empty_report() -> UsageReport:
    """A report of no calls."""
    return UsageReport(total=empty_usage(), by_role={}, by_agent={}, by_model={})


def report_calls(calls: Iterable[CallRecord]) -> UsageReport:
    """Sum call records by role and by agent."""
    report = empty_report()
    for call in calls:
        usage = TokenUsage(
            calls=1,
            input_tokens=call["input_tokens"],
            output_tokens=call["output_tokens"],
            total_tokens=call["total_tokens"],
            cached_input_tokens=call.get("cached_input_tokens", 0),
        )
        _add(report["total"], usage)
        _add(report["by_role"].setdefault(call["role"], empty_usage()), usage)
        _add(report["by_agent"].setdefault(call["agent"], empty_usage()), usage)
        _add(report["by_model"].setdefault(call["model"], empty_usage()), usage)
    return report


def combine_reports(reports: Iterable[UsageReport]) -> UsageReport:
    """Sum several reports, e.g. the layers of one run."""
    combined = empty_report()
    for report in reports:
        _add(combined["total"], report["total"])
        for role, usage in report["by_role"].items():
            _add(combined["by_role"].setdefault(role, empty_usage()), usage)
        for agent, usage in report["by_agent"].items():
            _add(combined["by_agent"].setdefault(agent, empty_usage()), usage)
        for model, usage in report["by_model"].items():
            _add(combined["by_model"].setdefault(model, empty_usage()), usage)
    return combined


class CostEstimate(TypedDict):
    """Money spent by a run, from a price table."""

    total: float
    by_model: dict[str, float]
    unpriced: list[str]
    """Models that made calls but have no price: not in `total`."""


def estimate_cost(
    usage: UsageReport, prices: Mapping[str, tuple[float, float]]
) -> CostEstimate:
    """Price a run's usage.

    Args:
        usage: A `usage` report (of a run, or of one layer).
        prices: Model (as keyed in `usage["by_model"]`) -> (price per million
            input tokens, price per million output tokens).

    Example:
        >>> report = {"total": {}, "by_role": {}, "by_agent": {}, "by_model": {
        ...     "openai:gpt-4.1-mini": {"calls": 2, "input_tokens": 1_000_000,
        ...                             "output_tokens": 500_000,
        ...                             "total_tokens": 1_500_000}}}
        >>> estimate_cost(report, {"openai:gpt-4.1-mini": (0.4, 1.6)})["total"]
        1.2
    """
    by_model: dict[str, float] = {}
    unpriced: list[str] = []
    for model, counts in usage["by_model"].items():
        if model not in prices:
            unpriced.append(model)
            continue
        per_input, per_output = prices[model]
        by_model[model] = (
            counts["input_tokens"] * per_input + counts["output_tokens"] * per_output
        ) / 1_000_000
    return CostEstimate(
        total=round(sum(by_model.values()), 10), by_model=by_model, unpriced=unpriced
    )
