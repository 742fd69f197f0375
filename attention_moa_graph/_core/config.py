"""The validated build-time configuration, and its per-run view under a context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.types import RetryPolicy

from attention_moa_graph._calls.models import Agent, LazyModel, check_model_spec
from attention_moa_graph._calls.runner import CallLimit
from attention_moa_graph._core.context import MoAContext
from attention_moa_graph._core.prompts import MoAPrompts
from attention_moa_graph._core.state import ROLES, RunSettings

MAX_AGENTS = 16
"""More agents than this make N² critiques per layer; almost surely a mistake."""


CritiqueMode = Literal["pairwise", "batched"]
CRITIQUE_MODES: tuple[CritiqueMode, ...] = ("pairwise", "batched")


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
    hedge_after: float | None = None
    critique_deadline: float | None = None
    stage_deadline: float | None = None
    call_limit: CallLimit | None = None
    critique_mode: CritiqueMode = "pairwise"
    _per_run: dict[str, LazyModel] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def critique_cutoff(self) -> float | None:
        """Seconds a critique may take: its own deadline, else the stage deadline."""
        if self.critique_deadline is not None:
            return self.critique_deadline
        return self.stage_deadline

    def agent(self, name: str) -> Agent:
        """Look up an agent (proposer, aggregator or residual) by name."""
        for candidate in (*self.agents, self.aggregator, self.residual_agent):
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def agent_for(self, name: str, spec: str | None) -> Agent:
        """The agent making a call: built, or with the model a run chose."""
        if spec is None:
            return self.agent(name)
        return Agent(name, self._per_run.setdefault(spec, LazyModel(spec)))

    def aggregator_for(self, settings: RunSettings) -> Agent:
        """The summary agent of a run."""
        return self.agent_for(self.aggregator.name, settings["aggregator_model"])

    def residual_for(self, settings: RunSettings) -> Agent:
        """The residual agent of a run (the aggregator unless built separately)."""
        if self.residual_agent is self.aggregator:
            return self.aggregator_for(settings)
        return self.residual_agent

    def build_models(self, settings: RunSettings) -> None:
        """Create every model of a run now, before any call is made.

        Raises:
            ValueError: If a model cannot be created, most often because the
                provider's API key is not set.
        """
        proposers = [
            self.agent_for(name, settings["models"].get(name))
            for name in settings["agents"]
        ]
        for agent in (
            *proposers,
            self.aggregator_for(settings),
            self.residual_for(settings),
        ):
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
        agents = [agent.name for agent in self.agents]
        models: dict[str, str] = {}
        if ctx.proposer_models is not None:
            agents = [f"proposer_{i}" for i in range(len(ctx.proposer_models))]
            for name, spec in zip(agents, ctx.proposer_models, strict=True):
                models[name] = str(
                    check_model_spec(spec, f"context proposer_models ({name})")
                )
            if len(agents) > MAX_AGENTS:
                raise ValueError(
                    f"context proposer_models lists {len(agents)} models; use at "
                    f"most {MAX_AGENTS}."
                )
        if switches["cross_attention"] and len(agents) < 2:
            raise ValueError(
                "cross-attention needs at least two proposers; list two or more "
                "proposer_models, or set cross_attention=False for the run."
            )
        if len(agents) < self.min_agents:
            raise ValueError(
                f"the run has {len(agents)} proposers but the graph needs "
                f"min_agents={self.min_agents}; list more proposer_models."
            )
        aggregator_model = None
        if ctx.aggregator_model is not None:
            aggregator_model = str(
                check_model_spec(ctx.aggregator_model, "context aggregator_model")
            )
        temperatures: dict[str, float] = dict(self.temperatures)
        if ctx.temperature is not None:
            temperatures = dict.fromkeys(ROLES, float(ctx.temperature))
        if ctx.temperatures:
            temperatures.update({k: float(v) for k, v in ctx.temperatures.items()})
        return RunSettings(
            agents=agents,
            models=models,
            aggregator_model=aggregator_model,
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
