"""`MoAContext`: the per-run settings, passed as `context=` and edited in Studio.

Its fields are the run's lineup (`proposer_models`, `aggregator_model`) and
every option of `MoAOptions` whose knob lets a run override it; it is built
from those declarations, so a new run-level option needs no change here. A
field left at None keeps the value the graph was built with.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, Optional

from attention_moa_graph._calls.policy import CallPolicy
from attention_moa_graph._core.options import MAX_AGENTS, MoAOptions
from attention_moa_graph._core.tools import check_response_format, tool_schemas

_OVERRIDE = {
    "any": "",
    "lower": " A run may only lower it.",
    "disable": " A run may only switch it off.",
}


def _check_lineup(context: Any) -> None:
    models = context.proposer_models
    if models is not None and (
        not isinstance(models, list)
        or not models
        or len(models) > MAX_AGENTS
        or not all(isinstance(m, str) and m.strip() for m in models)
    ):
        raise ValueError(
            f"MoAContext.proposer_models must be a list of 1 to {MAX_AGENTS} "
            "'provider:model' strings, e.g. ['openai:gpt-4.1-mini', 'demo:beta']; "
            f"got {models!r}."
        )
    aggregator = context.aggregator_model
    if aggregator is not None and (
        not isinstance(aggregator, str) or not aggregator.strip()
    ):
        raise ValueError(
            "MoAContext.aggregator_model must be a 'provider:model' string, "
            f"got {aggregator!r}."
        )


def _post_init(self: Any) -> None:
    _check_lineup(self)
    if self.tools is not None:
        schemas = tool_schemas(self.tools, where="MoAContext.tools")
        object.__setattr__(self, "tools", schemas)
    if self.response_format is not None:
        check_response_format(self.response_format, where="MoAContext")
    for setting in run_settings():
        value = getattr(self, setting.name)
        if value is not None:
            try:
                checked = setting.knob.check(value, setting.name)
            except ValueError as exc:
                raise ValueError(f"MoAContext: {exc}") from None
            object.__setattr__(self, setting.name, checked)


def run_settings() -> list[Any]:
    """The options a run may override, in declaration order."""
    return [s for s in MoAOptions.settings() if s.knob.run is not None]


def _build_context_class() -> type[Any]:
    hints = typing.get_type_hints(MoAOptions) | typing.get_type_hints(CallPolicy)
    lineup: list[tuple[str, Any, Any]] = [
        (
            "proposer_models",
            Optional[list[str]],  # noqa: UP045 - evaluated at runtime on 3.10 too
            dataclasses.field(
                default=None,
                metadata={
                    "description": "Models of the proposers for this run, as "
                    "'provider:model' strings (named proposer_0, proposer_1, ...). "
                    "Unset: the proposers the graph was built with."
                },
            ),
        ),
        (
            "aggregator_model",
            Optional[str],  # noqa: UP045
            dataclasses.field(
                default=None,
                metadata={
                    "description": "Model of the summary (and, unless built with "
                    "its own, residual) agent for this run, as 'provider:model'. "
                    "Unset: the built one."
                },
            ),
        ),
        (
            "tools",
            Optional[list[Any]],  # noqa: UP045
            dataclasses.field(
                default=None,
                metadata={
                    "description": "Tools for this run, as OpenAI function schemas "
                    "(or LangChain tools in code). Unset: the tools the graph was "
                    "built with."
                },
            ),
        ),
        (
            "tool_choice",
            Optional[str],  # noqa: UP045
            dataclasses.field(
                default=None,
                metadata={
                    "description": "'auto', 'none', 'required' or the name of the "
                    "tool the answer must call. Unset: the built choice ('auto' "
                    "when the run gives its own tools)."
                },
            ),
        ),
        (
            "response_format",
            Optional[dict[str, Any]],  # noqa: UP045
            dataclasses.field(
                default=None,
                metadata={
                    "description": "OpenAI's response_format for the answer: "
                    "{'type': 'json_schema', 'json_schema': {'name': ..., "
                    "'schema': {...}}} or {'type': 'json_object'}. The summary "
                    "and residual agents then reply in JSON. Unset: text."
                },
            ),
        ),
    ]
    options: list[tuple[str, Any, Any]] = []
    for setting in run_settings():
        kind = hints[setting.name]
        description = setting.knob.doc + _OVERRIDE[setting.knob.run]
        options.append(
            (
                setting.name,
                Optional[kind],  # noqa: UP045
                dataclasses.field(default=None, metadata={"description": description}),
            )
        )
    return dataclasses.make_dataclass(
        "MoAContext",
        lineup + options,
        namespace={
            "__post_init__": _post_init,
            "__doc__": _DOC,
            "__module__": __name__,
        },
        frozen=True,
        kw_only=True,
    )


_DOC = """Per-run settings; a field left at None keeps the built value.

A run can narrow what the built graph does (fewer layers, a stage switched
off, another temperature) but cannot add stages the graph was built without.
Pass it, or a dict of the same fields, as `context=`.

Example:
    >>> from attention_moa_graph import MoAContext
    >>> MoAContext(max_layers=1, temperature=0.0).max_layers
    1
"""

MoAContext: type[Any] = _build_context_class()


def as_context(context: Any) -> Any:
    """A run's context as a `MoAContext` (from a dict, or None: all unset)."""
    if context is None:
        return MoAContext()
    if isinstance(context, Mapping):
        return MoAContext(**context)
    return context


def overrides_of(context: Any) -> dict[str, Any]:
    """The options a `MoAContext` sets."""
    return {
        s.name: value
        for s in run_settings()
        if (value := getattr(context, s.name)) is not None
    }
