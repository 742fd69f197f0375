"""Token accounting: per-call records summed by role and by agent."""

from __future__ import annotations

from collections.abc import Iterable

from attention_moa_graph.state import CallRecord, TokenUsage, UsageReport


def empty_usage() -> TokenUsage:
    """Zero calls, zero tokens."""
    return TokenUsage(calls=0, input_tokens=0, output_tokens=0, total_tokens=0)


def _add(into: TokenUsage, other: TokenUsage) -> None:
    into["calls"] += other["calls"]
    into["input_tokens"] += other["input_tokens"]
    into["output_tokens"] += other["output_tokens"]
    into["total_tokens"] += other["total_tokens"]


def empty_report() -> UsageReport:
    """A report of no calls."""
    return UsageReport(total=empty_usage(), by_role={}, by_agent={})


def report_calls(calls: Iterable[CallRecord]) -> UsageReport:
    """Sum call records by role and by agent."""
    report = empty_report()
    for call in calls:
        usage = TokenUsage(
            calls=1,
            input_tokens=call["input_tokens"],
            output_tokens=call["output_tokens"],
            total_tokens=call["total_tokens"],
        )
        _add(report["total"], usage)
        _add(report["by_role"].setdefault(call["role"], empty_usage()), usage)
        _add(report["by_agent"].setdefault(call["agent"], empty_usage()), usage)
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
    return combined
