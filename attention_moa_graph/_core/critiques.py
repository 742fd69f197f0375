"""The critique stage, one strategy per `critique_mode`.

A strategy owns everything that differs between the modes: the nodes it adds
to the layer, the task it sends, the prompt, how a reply becomes suggestions
per target, and which critiques a late call leaves out.

- `Pairwise` (the paper): one call per critic and target; a critic on its own
  draft is self-attention, on a peer's cross-attention (N² calls per layer).
- `Batched`: one call per critic reviewing all its targets at once, its
  reply split at its `[[answer N]]` marker lines (N calls per layer).
"""

from __future__ import annotations

from langgraph.types import Send

from attention_moa_graph._calls.model_node import ModelCall, ModelNode, Update
from attention_moa_graph._core.config import MoAConfig
from attention_moa_graph._core.messages import (
    build_batched_critique_messages,
    build_cross_attention_messages,
    build_self_attention_messages,
    split_batched_critique,
)
from attention_moa_graph._core.nodes import proposer_node
from attention_moa_graph._core.routing import noted
from attention_moa_graph._core.state import (
    BatchedCritiqueTask,
    CritiqueTask,
    LayerState,
    critique_key,
)


def _late(critic: str, targets: list[str]) -> Update:
    """Past the critique deadline: the targets refine without these critiques."""
    return {"late": [critique_key(critic, t) for t in targets]}


class Pairwise:
    """One call per (critic, target): `cross_attention` and `self_attention` nodes."""

    def __init__(self, config: MoAConfig) -> None:
        """Build the nodes of the attentions the graph was built with."""
        options = config.options
        self.nodes: dict[str, ModelNode] = {}
        if options.cross_attention:
            self.nodes["cross_attention"] = self._node(config, "cross_attention")
        if options.self_attention:
            self.nodes["self_attention"] = self._node(config, "self_attention")

    @staticmethod
    def _node(config: MoAConfig, role: str) -> ModelNode:
        prompts = config.options.prompts

        def plan(task: CritiqueTask) -> ModelCall:
            note = task.get("tools_note")
            if role == "self_attention":
                messages = build_self_attention_messages(
                    prompts, task["messages"], task["own_answer"], note
                )
            else:
                messages = build_cross_attention_messages(
                    prompts,
                    task["messages"],
                    task["own_answer"],
                    task["target_answer"],
                    note,
                )
            return ModelCall(
                role=role,
                agent=config.agent_for(task["critic"], task["model"]),
                layer=task["layer"],
                messages=messages,
                params=task["params"],
                target=task["target"] if role == "cross_attention" else None,
            )

        def write(task: CritiqueTask, text: str) -> Update:
            return {"critiques": {task["target"]: {task["critic"]: text}}}

        def late(task: CritiqueTask, call: ModelCall) -> Update:
            return _late(task["critic"], [task["target"]])

        return proposer_node(role, "critique", plan, write, late, config)

    def sends(
        self, state: LayerState, assignments: dict[str, list[str]], strict: bool
    ) -> list[Send]:
        """One call per critic and target."""
        drafts, settings = state["drafts"], state["settings"]
        sends = []
        for critic, targets in assignments.items():
            for target in targets:
                role = "self_attention" if critic == target else "cross_attention"
                task = noted(
                    CritiqueTask(
                        critic=critic,
                        target=target,
                        layer=state["layer"],
                        messages=state["messages"],
                        own_answer=drafts[critic],
                        target_answer=drafts[target],
                        params=settings["params"][role],
                        strict=strict,
                        model=settings["models"].get(critic),
                    ),
                    settings,
                    "review",
                )
                sends.append(Send(role, task))
        return sends


class Batched:
    """One call per critic over all its targets: the `critique` node."""

    def __init__(self, config: MoAConfig) -> None:
        """Build the one critique node."""
        prompts = config.options.prompts

        def plan(task: BatchedCritiqueTask) -> ModelCall:
            reviewed = [
                (answer, target == task["critic"])
                for target, answer in zip(
                    task["targets"], task["target_answers"], strict=True
                )
            ]
            return ModelCall(
                role="critique",
                agent=config.agent_for(task["critic"], task["model"]),
                layer=task["layer"],
                messages=build_batched_critique_messages(
                    prompts,
                    task["messages"],
                    task["own_answer"],
                    reviewed,
                    task.get("tools_note"),
                ),
                params=task["params"],
            )

        def write(task: BatchedCritiqueTask, text: str) -> Update:
            sections = split_batched_critique(text, len(task["targets"]))
            by_target = zip(task["targets"], sections, strict=True)
            return {
                "critiques": {
                    target: {task["critic"]: section} for target, section in by_target
                }
            }

        def late(task: BatchedCritiqueTask, call: ModelCall) -> Update:
            return _late(task["critic"], task["targets"])

        node = proposer_node("critique", "critique", plan, write, late, config)
        self.nodes: dict[str, ModelNode] = {"critique": node}

    def sends(
        self, state: LayerState, assignments: dict[str, list[str]], strict: bool
    ) -> list[Send]:
        """One call per critic that has targets."""
        drafts, settings = state["drafts"], state["settings"]
        return [
            Send(
                "critique",
                noted(
                    BatchedCritiqueTask(
                        critic=critic,
                        targets=list(targets),
                        layer=state["layer"],
                        messages=state["messages"],
                        own_answer=drafts[critic],
                        target_answers=[drafts[t] for t in targets],
                        params=settings["params"]["critique"],
                        model=settings["models"].get(critic),
                        strict=strict,
                    ),
                    settings,
                    "review",
                ),
            )
            for critic, targets in assignments.items()
            if targets
        ]


def critique_strategy(config: MoAConfig) -> Pairwise | Batched | None:
    """The strategy of the graph's `critique_mode`, or None with both attentions off."""
    options = config.options
    if not (options.cross_attention or options.self_attention):
        return None
    return Batched(config) if options.critique_mode == "batched" else Pairwise(config)
