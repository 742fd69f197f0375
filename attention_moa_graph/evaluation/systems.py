"""The systems an evaluation compares, described by data so a run can be resumed.

A `SystemSpec` names the kind of ensemble and its models and knobs; `build`
turns it into a compiled graph, and `fingerprint` keys every saved thread, so
a changed model or knob never reuses another system's answers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from attention_moa_graph._calls.models import ModelLike, Proposer
from attention_moa_graph._core.graph import create_attention_moa
from attention_moa_graph._core.options import MoAOptions
from attention_moa_graph._core.prompts import DEFAULT_PROMPTS, MoAPrompts
from attention_moa_graph.evaluation.baselines import (
    create_moa,
    create_self_moa,
    create_single,
)

SystemKind = Literal["attention-moa", "moa", "self-moa", "single"]
SYSTEMS: tuple[SystemKind, ...] = ("attention-moa", "moa", "self-moa", "single")


def _uses(kind: SystemKind, name: str) -> bool:
    """Whether a system of this kind takes the option (classic MoA: `max_layers`)."""
    if kind == "attention-moa":
        return True
    if kind == "moa" and name == "max_layers":
        return True
    return MoAOptions.setting(name).knob.baselines


def _json(value: Any) -> Any:
    """An option's value as JSON: prompts by the templates that differ."""
    if isinstance(value, MoAPrompts):
        return {
            f.name: getattr(value, f.name)
            for f in fields(value)
            if getattr(value, f.name) != getattr(DEFAULT_PROMPTS, f.name)
        }
    return value


@dataclass(frozen=True)
class SystemSpec:
    """One system under evaluation.

    Attributes:
        kind: `attention-moa`, `moa` (classic MoA), `self-moa` or `single`.
        proposers: Model specs of the agents (`self-moa` and `single` use the
            first).
        aggregator: The summary/residual agent or MoA aggregator; default: the
            first proposer's model.
        residual_model: Attention-MoA's residual agent, if not the aggregator.
        samples: Self-MoA's number of samples.
        name: The generator name written into the official output files.
        options: The ensemble's options. Classic MoA reads `max_layers` as
            its layer count (the aggregator's included); the baselines refuse
            options they have no use for.
    """

    kind: SystemKind
    proposers: tuple[str, ...]
    aggregator: str | None = None
    residual_model: str | None = None
    samples: int = 4
    name: str = ""
    options: MoAOptions = field(default_factory=MoAOptions)

    def __post_init__(self) -> None:
        """Refuse unknown kinds, empty model lists and options the kind lacks."""
        if self.kind not in SYSTEMS:
            raise ValueError(
                f"unknown system {self.kind!r}; choose one of {', '.join(SYSTEMS)}."
            )
        if not self.proposers:
            raise ValueError(
                f"system {self.kind!r} needs at least one model, e.g. "
                "-p openai:gpt-4.1-mini."
            )
        foreign = [n for n in self.options.changed() if not _uses(self.kind, n)]
        if foreign:
            flags = ", ".join(
                MoAOptions.setting(n).knob.flag.names[-1] for n in foreign
            )
            raise ValueError(
                f"{flags} apply to attention-moa only; {self.kind} has no use for them."
            )
        if not self.name:
            object.__setattr__(self, "name", self.kind)

    def describe(self) -> dict[str, Any]:
        """What decides the answers, and the name (JSON-ready).

        Options are listed only where they differ from their defaults and
        change answers, so that a new option leaves saved runs' keys alone.
        """
        described: dict[str, Any] = {
            "kind": self.kind,
            "proposers": list(self.proposers),
            "aggregator": self.aggregator,
            "residual_model": self.residual_model,
            "samples": self.samples,
            "name": self.name,
        }
        for name, value in sorted(self.options.changed().items()):
            if MoAOptions.setting(name).knob.answers:
                described[name] = _json(value)
        return described

    def fingerprint(self) -> str:
        """A digest of what decides the answers (not the name): keys saved threads."""
        described = self.describe()
        described.pop("name")
        text = json.dumps(described, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def aggregator_spec(self) -> str:
        """The aggregator's model spec."""
        return self.aggregator or self.proposers[0]

    def build(
        self,
        checkpointer: Checkpointer = None,
        models: dict[str, BaseChatModel] | None = None,
    ) -> CompiledStateGraph[Any, Any, Any, Any]:
        """Compile the system's graph.

        Args:
            checkpointer: Saves every step, so an interrupted run resumes.
            models: Spec -> chat model instance, for specs that need one (an
                OpenAI-compatible `--base-url`, or a fake in tests).
        """
        chosen = models or {}

        def model(spec: str) -> ModelLike:
            return chosen.get(spec, spec)

        names = _agent_names(self.proposers)
        lineup = [
            Proposer(n, model(s)) for n, s in zip(names, self.proposers, strict=True)
        ]
        changed = self.options.changed()
        if self.kind == "attention-moa":
            return create_attention_moa(
                lineup,
                aggregator=model(self.aggregator_spec),
                residual_model=model(self.residual_model)
                if self.residual_model
                else None,
                options=self.options,
                checkpointer=checkpointer,
                name="attention_moa",
            )
        if self.kind == "moa":
            layers = changed.pop("max_layers", self.options.max_layers)
            return create_moa(
                lineup,
                aggregator=model(self.aggregator_spec),
                layers=layers,
                checkpointer=checkpointer,
                **changed,
            )
        if self.kind == "self-moa":
            return create_self_moa(
                model(self.proposers[0]),
                samples=self.samples,
                aggregator=model(self.aggregator_spec),
                checkpointer=checkpointer,
                **changed,
            )
        return create_single(
            model(self.proposers[0]), checkpointer=checkpointer, **changed
        )


def _agent_names(specs: tuple[str, ...]) -> list[str]:
    """Readable, unique agent names from model specs (`gpt-4.1-mini`, ...)."""
    names: list[str] = []
    for index, spec in enumerate(specs):
        base = spec.split(":", 1)[-1].replace("/", "-")[:48] or f"proposer_{index}"
        base = "".join(c if c.isalnum() or c in "_.-" else "-" for c in base)
        if not base[0].isalnum():
            base = f"m{base}"
        name = base if base not in names else f"{base}-{index}"
        names.append(name)
    return names
