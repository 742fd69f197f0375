"""The systems an evaluation compares, described by data so a run can be resumed.

A `SystemSpec` names the kind of ensemble and its models and knobs; `build`
turns it into a compiled graph, and `fingerprint` keys every saved thread, so
a changed model or knob never reuses another system's answers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from attention_moa_graph._calls.models import ModelLike, Proposer
from attention_moa_graph._core.config import CritiqueMode
from attention_moa_graph._core.graph import DEFAULT_RETRY_POLICY, create_attention_moa
from attention_moa_graph.evaluation.baselines import (
    create_moa,
    create_self_moa,
    create_single,
)

SystemKind = Literal["attention-moa", "moa", "self-moa", "single"]
SYSTEMS: tuple[SystemKind, ...] = ("attention-moa", "moa", "self-moa", "single")


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
        layers: Attention-MoA's maximum layers; classic MoA's layers
            counting the aggregator's.
        samples: Self-MoA's number of samples.
        early_stopping, cross_attention, self_attention, residual: Attention-MoA
            knobs (the paper's ablations switch them off).
        name: The generator name written into the official output files.
    """

    kind: SystemKind
    proposers: tuple[str, ...]
    aggregator: str | None = None
    residual_model: str | None = None
    layers: int = 3
    samples: int = 4
    early_stopping: bool = True
    cross_attention: bool = True
    self_attention: bool = True
    residual: bool = True
    critique_deadline: float | None = None
    stage_deadline: float | None = None
    critique_mode: CritiqueMode = "pairwise"
    name: str = ""
    options: dict[str, Any] = field(default_factory=dict, compare=False)
    """Build options that leave answers alone (outside the fingerprint):
    call_timeout, hedge_after, max_concurrent_calls, retries, min_agents."""

    def __post_init__(self) -> None:
        """Refuse unknown kinds and empty model lists; default the name."""
        if self.kind not in SYSTEMS:
            raise ValueError(
                f"unknown system {self.kind!r}; choose one of {', '.join(SYSTEMS)}."
            )
        if not self.proposers:
            raise ValueError(
                f"system {self.kind!r} needs at least one model, e.g. "
                "-p openai:gpt-4.1-mini."
            )
        critiquing = (
            self.critique_deadline is not None
            or self.stage_deadline is not None
            or self.critique_mode != "pairwise"
        )
        if critiquing and self.kind != "attention-moa":
            raise ValueError(
                "--critique-deadline, --stage-deadline and --critique-mode apply "
                f"to attention-moa only; {self.kind} has no critique stage."
            )
        if not self.name:
            object.__setattr__(self, "name", self.kind)

    def describe(self) -> dict[str, Any]:
        """The fields that decide what the system answers (JSON-ready)."""
        described = asdict(self)
        described.pop("options")
        # Absent at their defaults, so runs saved before the options keep
        # their keys.
        for deadline in ("critique_deadline", "stage_deadline"):
            if described[deadline] is None:
                described.pop(deadline)
        if described["critique_mode"] == "pairwise":
            described.pop("critique_mode")
        described["proposers"] = list(self.proposers)
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

        timeout = self.options.get("call_timeout", 120.0)
        hedge = self.options.get("hedge_after")
        cap = self.options.get("max_concurrent_calls")
        retry = DEFAULT_RETRY_POLICY._replace(
            max_attempts=self.options.get("retries", DEFAULT_RETRY_POLICY.max_attempts)
        )
        names = _agent_names(self.proposers)
        if self.kind == "attention-moa":
            return create_attention_moa(
                [
                    Proposer(n, model(s))
                    for n, s in zip(names, self.proposers, strict=True)
                ],
                aggregator=model(self.aggregator_spec),
                residual_model=model(self.residual_model)
                if self.residual_model
                else None,
                max_layers=self.layers,
                early_stopping=self.early_stopping,
                cross_attention=self.cross_attention,
                self_attention=self.self_attention,
                residual=self.residual,
                call_timeout=timeout,
                hedge_after=hedge,
                max_concurrent_calls=cap,
                critique_deadline=self.critique_deadline,
                stage_deadline=self.stage_deadline,
                critique_mode=self.critique_mode,
                retry_policy=retry,
                min_agents=self.options.get("min_agents", 1),
                checkpointer=checkpointer,
                name="attention_moa",
            )
        if self.kind == "moa":
            return create_moa(
                [
                    Proposer(n, model(s))
                    for n, s in zip(names, self.proposers, strict=True)
                ],
                aggregator=model(self.aggregator_spec),
                layers=self.layers,
                call_timeout=timeout,
                hedge_after=hedge,
                max_concurrent_calls=cap,
                retry_policy=retry,
                checkpointer=checkpointer,
            )
        if self.kind == "self-moa":
            return create_self_moa(
                model(self.proposers[0]),
                samples=self.samples,
                aggregator=model(self.aggregator_spec),
                call_timeout=timeout,
                hedge_after=hedge,
                max_concurrent_calls=cap,
                retry_policy=retry,
                checkpointer=checkpointer,
            )
        return create_single(
            model(self.proposers[0]),
            call_timeout=timeout,
            hedge_after=hedge,
            max_concurrent_calls=cap,
            retry_policy=retry,
            checkpointer=checkpointer,
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
