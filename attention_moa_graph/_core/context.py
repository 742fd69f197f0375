"""`MoAContext`: the per-run settings, passed as `context=` and edited in Studio.

Its fields are the run's lineup (`proposer_models`, `aggregator_model`, tools)
and every option of `MoAOptions` whose knob lets a run override it, with the
option's own documentation; a test keeps the two in step. A field left at
None keeps the value the graph was built with.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from attention_moa_graph._core.options import MAX_AGENTS, MoAOptions
from attention_moa_graph._core.sampling import SamplingRole
from attention_moa_graph._core.tools import check_response_format, tool_schemas
from attention_moa_graph._knobs import Setting

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


def run_settings() -> list[Setting]:
    """The options a run may override, in declaration order."""
    return [s for s in MoAOptions.settings() if s.knob.run is not None]


def _run_option(name: str) -> Any:
    """The context field of the run-overridable option `name`: unset by default."""
    knob = MoAOptions.setting(name).knob
    assert knob.run is not None, f"{name} is fixed when the graph is built"
    description = knob.doc + _OVERRIDE[knob.run]
    return field(default=None, metadata={"description": description})


def _described(text: str) -> Any:
    return field(default=None, metadata={"description": text})


@dataclass(frozen=True, kw_only=True)
class MoAContext:
    """Per-run settings; a field left at None keeps the built value.

    A run can narrow what the built graph does (fewer layers, a stage switched
    off, another temperature) but cannot add stages the graph was built without.
    Pass it, or a dict of the same fields, as `context=`; Studio shows it as the
    run's configuration form.

    Example:
        >>> from attention_moa_graph import MoAContext
        >>> MoAContext(max_layers=1, temperature=0.0).max_layers
        1
    """

    proposer_models: list[str] | None = _described(
        "Models of the proposers for this run, as 'provider:model' strings "
        "(named proposer_0, proposer_1, ...). Unset: the proposers the graph was "
        "built with."
    )
    aggregator_model: str | None = _described(
        "Model of the summary (and, unless built with its own, residual) agent "
        "for this run, as 'provider:model'. Unset: the built one."
    )
    tools: list[Any] | None = _described(
        "Tools for this run, as OpenAI function schemas (or LangChain tools in "
        "code). Unset: the tools the graph was built with."
    )
    tool_choice: str | None = _described(
        "'auto', 'none', 'required' or the name of the tool the answer must "
        "call. Unset: the built choice ('auto' when the run gives its own tools)."
    )
    response_format: dict[str, Any] | None = _described(
        "OpenAI's response_format for the answer: {'type': 'json_schema', "
        "'json_schema': {'name': ..., 'schema': {...}}} or {'type': "
        "'json_object'}. The summary and residual agents then reply in JSON. "
        "Unset: text."
    )
    max_layers: int | None = _run_option("max_layers")
    early_stopping: bool | None = _run_option("early_stopping")
    cross_attention: bool | None = _run_option("cross_attention")
    self_attention: bool | None = _run_option("self_attention")
    residual: bool | None = _run_option("residual")
    agreement: float | None = _run_option("agreement")
    critique_peers: int | None = _run_option("critique_peers")
    token_budget: int | None = _run_option("token_budget")
    temperature: float | None = _run_option("temperature")
    temperatures: Mapping[SamplingRole, float] | None = _run_option("temperatures")
    max_tokens: int | None = _run_option("max_tokens")
    role_max_tokens: Mapping[SamplingRole, int] | None = _run_option("role_max_tokens")
    role_stop: Mapping[SamplingRole, tuple[str, ...]] | None = _run_option("role_stop")
    repeat_penalty: float | None = _run_option("repeat_penalty")

    def __post_init__(self) -> None:
        """Check the lineup, the tools and every option set."""
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


def as_context(context: Any) -> MoAContext:
    """A run's context as a `MoAContext` (from a dict, or None: all unset)."""
    if context is None:
        return MoAContext()
    if isinstance(context, Mapping):
        return MoAContext(**context)
    if not isinstance(context, MoAContext):
        raise TypeError(
            f"a run's context must be a MoAContext or a dict of its fields, got "
            f"{type(context).__name__}."
        )
    return context


def overrides_of(context: MoAContext) -> dict[str, Any]:
    """The options a `MoAContext` sets."""
    return {
        s.name: value
        for s in run_settings()
        if (value := getattr(context, s.name)) is not None
    }
