"""Per-run knobs, passed as `context=` and editable in LangGraph Studio."""

from __future__ import annotations

from dataclasses import dataclass, field

from attention_moa_graph._core.state import ROLES


@dataclass(frozen=True, kw_only=True)
class MoAContext:
    """Per-run settings; a field left at None keeps the value the graph was built with.

    Context can narrow what the built graph does (fewer layers, a stage switched
    off, another temperature) but cannot add stages the graph was built without.

    Example:
        >>> from attention_moa_graph import MoAContext
        >>> MoAContext(max_layers=1, temperature=0.0).max_layers
        1
    """

    proposer_models: list[str] | None = field(
        default=None,
        metadata={
            "description": "Models of the proposers for this run, as "
            "'provider:model' strings (named proposer_0, proposer_1, ...). Unset: "
            "the proposers the graph was built with."
        },
    )
    aggregator_model: str | None = field(
        default=None,
        metadata={
            "description": "Model of the summary (and, unless built with its own, "
            "residual) agent for this run, as 'provider:model'. Unset: the built one."
        },
    )
    max_layers: int | None = field(
        default=None,
        metadata={
            "description": "Run at most this many layers (1 up to the built depth)."
        },
    )
    early_stopping: bool | None = field(
        default=None,
        metadata={
            "description": "Let the residual agent end the loop early with the stop "
            "signal."
        },
    )
    cross_attention: bool | None = field(
        default=None,
        metadata={
            "description": "Have every agent critique every peer's draft. Set false "
            "to ablate; true needs a graph built with it."
        },
    )
    self_attention: bool | None = field(
        default=None,
        metadata={
            "description": "Have every agent critique its own draft. Set false to "
            "ablate; true needs a graph built with it."
        },
    )
    residual: bool | None = field(
        default=None,
        metadata={
            "description": "Call the residual agent from layer 2 on. Set false to "
            "ablate; true needs a graph built with it."
        },
    )
    temperature: float | None = field(
        default=None,
        metadata={
            "description": "Sampling temperature for every call of the run "
            "(overrides the built per-role temperatures)."
        },
    )

    temperatures: dict[str, float] | None = field(
        default=None,
        metadata={
            "description": "Per-role temperatures for this run, e.g. "
            '{"draft": 0.7, "summary": 0.0}; roles: draft, cross_attention, '
            "self_attention, refine, summary, residual. Applied after `temperature`."
        },
    )

    def __post_init__(self) -> None:
        """Reject values no run could use."""
        if self.max_layers is not None and (
            isinstance(self.max_layers, bool)
            or not isinstance(self.max_layers, int)
            or self.max_layers < 1
        ):
            raise ValueError(
                f"MoAContext.max_layers must be a whole number >= 1, got "
                f"{self.max_layers!r}."
            )
        if self.temperature is not None and (
            isinstance(self.temperature, bool)
            or not isinstance(self.temperature, (int, float))
            or not 0.0 <= self.temperature <= 2.0
        ):
            raise ValueError(
                f"MoAContext.temperature must be a number from 0 to 2, got "
                f"{self.temperature!r}."
            )
        if self.proposer_models is not None and (
            not isinstance(self.proposer_models, list)
            or not self.proposer_models
            or not all(isinstance(m, str) and m.strip() for m in self.proposer_models)
        ):
            raise ValueError(
                "MoAContext.proposer_models must be a non-empty list of "
                "'provider:model' strings, e.g. ['openai:gpt-4.1-mini', "
                f"'demo:beta']; got {self.proposer_models!r}."
            )
        if self.aggregator_model is not None and (
            not isinstance(self.aggregator_model, str)
            or not self.aggregator_model.strip()
        ):
            raise ValueError(
                "MoAContext.aggregator_model must be a 'provider:model' string, "
                f"got {self.aggregator_model!r}."
            )
        if self.temperatures is not None:
            if not isinstance(self.temperatures, dict) or any(
                role not in ROLES
                or isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0.0 <= value <= 2.0
                for role, value in self.temperatures.items()
            ):
                raise ValueError(
                    "MoAContext.temperatures must map roles "
                    f"({', '.join(ROLES)}) to numbers from 0 to 2; "
                    f"got {self.temperatures!r}."
                )
        for name in ("early_stopping", "cross_attention", "self_attention", "residual"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise ValueError(
                    f"MoAContext.{name} must be true, false or unset, got {value!r}."
                )
