"""The built ensemble (agents, options, call runner) and its view for one run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from attention_moa_graph._calls.errors import MoAError
from attention_moa_graph._calls.models import (
    Agent,
    LazyModel,
    ModelLike,
    Proposer,
    check_model_spec,
    provider_params,
    resolve_agents,
    resolve_single,
)
from attention_moa_graph._calls.runner import CallRunner
from attention_moa_graph._core.context import as_context, overrides_of
from attention_moa_graph._core.options import MAX_AGENTS, MoAOptions, MoAOptionsDict
from attention_moa_graph._core.sampling import role_params
from attention_moa_graph._core.state import RunSettings
from attention_moa_graph._core.tools import check_tool_choice, tool_names, tool_schemas
from attention_moa_graph._knobs import Setting


@dataclass(frozen=True)
class MoAConfig:
    """What a graph is built from: its agents, its options and its call runner."""

    agents: tuple[Agent, ...]
    aggregator: Agent
    residual_agent: Agent
    options: MoAOptions
    runner: CallRunner
    tools: tuple[dict[str, Any], ...] = ()
    """The built tools, as OpenAI function schemas."""
    tool_choice: str = "auto"
    _per_run: dict[str, LazyModel] = field(
        default_factory=dict, compare=False, repr=False
    )

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
                model = agent.model.get()
            except MoAError as exc:  # e.g. a local runtime that is not installed
                raise ValueError(
                    f"cannot create model {agent.model.label!r} for agent "
                    f"{agent.name!r}: {exc}"
                ) from exc
            except Exception as exc:
                raise ValueError(
                    f"cannot create model {agent.model.label!r} for agent "
                    f"{agent.name!r}: {exc} Set the provider's API key (e.g. "
                    "OPENAI_API_KEY, ANTHROPIC_API_KEY) or pass a chat model instance."
                ) from exc
            # A parameter the model cannot take fails here, before any call.
            provider_params(model, settings["params"]["draft"])

    def for_run(self, context: Any) -> RunSettings:
        """The settings of one run: the built options narrowed by its context.

        Raises:
            ValueError: If the context asks for more than the graph was built
                with (more layers, a stage built off) or names bad models.
        """
        context = as_context(context)
        overrides = overrides_of(context)
        for name, value in overrides.items():
            _check_narrowing(MoAOptions.setting(name), self.options.get(name), value)
        options = MoAOptions.build(self.options, **overrides)
        agents = [agent.name for agent in self.agents]
        models: dict[str, str] = {}
        if context.proposer_models is not None:
            agents = [f"proposer_{i}" for i in range(len(context.proposer_models))]
            for name, spec in zip(agents, context.proposer_models, strict=True):
                where = f"context proposer_models ({name})"
                models[name] = str(check_model_spec(spec, where))
        aggregator_model = context.aggregator_model
        if aggregator_model is not None:
            where = "context aggregator_model"
            aggregator_model = str(check_model_spec(aggregator_model, where))
        check_lineup(len(agents), options, where="the run")
        tools = list(self.tools) if context.tools is None else list(context.tools)
        choice = context.tool_choice
        if choice is None:
            choice = self.tool_choice if context.tools is None else "auto"
        choice = check_tool_choice(choice, tool_names(tools), where="the run")
        return RunSettings(
            agents=agents,
            models=models,
            aggregator_model=aggregator_model,
            options=plain_values(options),
            params=role_params(self.options.sampling, overrides),
            tools=tools,
            tool_choice=choice,
            response_format=context.response_format,
        )


def plain_values(options: MoAOptions) -> MoAOptionsDict:
    """The options whose values are plain data, as a checkpoint can hold them."""
    plain: dict[str, Any] = {}
    for name, value in options.values().items():
        if isinstance(value, Mapping):
            value = dict(value)
        if value is None or isinstance(value, (bool, int, float, str, dict)):
            plain[name] = value
    return cast(MoAOptionsDict, plain)


def _check_narrowing(setting: Setting, built: Any, wanted: Any) -> None:
    """Refuse a run override its knob does not allow: the graph would need a rebuild."""
    name, how = setting.name, setting.knob.run
    if (how == "lower" and wanted > built) or (
        how == "disable" and wanted and not built
    ):
        raise ValueError(
            f"context {name}={wanted!r}, but the graph was built with "
            f"{name}={built!r} and a run may only "
            f"{'lower it' if how == 'lower' else 'switch it off'}; rebuild with "
            f"create_attention_moa(..., {name}={wanted!r})."
        )


def check_lineup(count: int, options: MoAOptions, *, where: str) -> None:
    """Refuse options the number of proposers cannot satisfy."""
    if count > MAX_AGENTS:
        raise ValueError(
            f"{where} has {count} proposers, which would make {count**2} critique "
            f"calls per layer; use at most {MAX_AGENTS}."
        )
    if options.cross_attention and count < 2:
        raise ValueError(
            f"cross-attention needs at least two proposers to critique each other, "
            f"but {where} has {count}; add a proposer or pass cross_attention=False."
        )
    if options.min_agents > count:
        raise ValueError(
            f"`min_agents` is {options.min_agents}, but {where} has only {count} "
            "proposers; lower min_agents or add proposers."
        )


def build_config(
    proposers: Sequence[ModelLike | Proposer],
    *,
    aggregator: ModelLike | Proposer,
    residual_model: ModelLike | Proposer | None,
    options: MoAOptions,
    tools: Sequence[Any] = (),
    tool_choice: Any = None,
) -> MoAConfig:
    """Check the lineup against the options and resolve every agent."""
    schemas = tool_schemas(tools, where="create_attention_moa(tools=...)")
    choice = check_tool_choice(
        tool_choice, tool_names(schemas), where="create_attention_moa(tool_choice=...)"
    )
    agents = resolve_agents(proposers)
    check_lineup(len(agents), options, where="the graph")
    chair = resolve_single(aggregator, "aggregator", "aggregator")
    residual = (
        chair
        if residual_model is None
        else resolve_single(residual_model, "residual_model", "residual")
    )
    return MoAConfig(
        agents=agents,
        aggregator=chair,
        residual_agent=residual,
        options=options,
        runner=CallRunner(options.calls),
        tools=tuple(schemas),
        tool_choice=choice,
    )
