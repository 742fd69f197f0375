"""The validated build-time configuration, and its per-run view under a context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langgraph.types import RetryPolicy

from attention_moa_graph.context import MoAContext
from attention_moa_graph.models import Agent
from attention_moa_graph.prompts import MoAPrompts
from attention_moa_graph.state import ROLES, RunSettings

MAX_AGENTS = 16
"""More agents than this make N² critiques per layer; almost surely a mistake."""


@dataclass(frozen=True)
class MoAConfig:
    """Everything `create_attention_moa` was built with, after validation."""

    agents: tuple[Agent, ...]
    aggregator: Agent
    residual_agent: Agent
    prompts: MoAPrompts
    max_layers: int
    early_stopping: bool
    cross_attention: bool
    self_attention: bool
    residual: bool
    temperatures: Mapping[str, float]
    min_agents: int = 1
    call_timeout: float | None = 120.0
    retry_policy: RetryPolicy | None = None

    def agent(self, name: str) -> Agent:
        """Look up an agent (proposer, aggregator or residual) by name."""
        for candidate in (*self.agents, self.aggregator, self.residual_agent):
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def build_models(self) -> None:
        """Create every lazily specified model now, before any call is made.

        Raises:
            ValueError: If a model cannot be created, most often because the
                provider's API key is not set.
        """
        for agent in (*self.agents, self.aggregator, self.residual_agent):
            try:
                agent.model.get()
            except Exception as exc:
                raise ValueError(
                    f"cannot create model {agent.model.label!r} for agent "
                    f"{agent.name!r}: {exc} Set the provider's API key (e.g. "
                    "OPENAI_API_KEY, ANTHROPIC_API_KEY) or pass a chat model instance."
                ) from exc

    def for_run(self, context: MoAContext | Mapping[str, Any] | None) -> RunSettings:
        """Return the settings of one run: these values narrowed by its context.

        Raises:
            ValueError: If the context asks for more layers or a stage the graph
                was not built with.
        """
        if isinstance(context, Mapping):
            context = MoAContext(**context)
        ctx = context or MoAContext()
        max_layers = self.max_layers
        if ctx.max_layers is not None:
            if ctx.max_layers > self.max_layers:
                raise ValueError(
                    f"context max_layers={ctx.max_layers} exceeds the built depth "
                    f"of {self.max_layers}; rebuild with "
                    f"create_attention_moa(..., max_layers={ctx.max_layers})."
                )
            max_layers = ctx.max_layers
        switches: dict[str, bool] = {}
        for switch in ("cross_attention", "self_attention", "residual"):
            built: bool = getattr(self, switch)
            wanted = getattr(ctx, switch)
            if wanted and not built:
                raise ValueError(
                    f"context {switch}=True, but the graph was built with "
                    f"{switch}=False; rebuild with create_attention_moa(..., "
                    f"{switch}=True)."
                )
            switches[switch] = built if wanted is None else wanted
        temperatures: dict[str, float] = dict(self.temperatures)
        if ctx.temperature is not None:
            temperatures = dict.fromkeys(ROLES, float(ctx.temperature))
        return RunSettings(
            max_layers=max_layers,
            early_stopping=(
                self.early_stopping
                if ctx.early_stopping is None
                else ctx.early_stopping
            ),
            cross_attention=switches["cross_attention"],
            self_attention=switches["self_attention"],
            residual=switches["residual"],
            min_agents=self.min_agents,
            temperatures=temperatures,
        )
