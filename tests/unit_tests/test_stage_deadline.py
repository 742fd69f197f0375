"""The stage deadline: drafts and refinements that come too late.

As in test_stragglers, latency belongs to the test double: agent `c` is slow
on one kind of prompt (a pure function of the prompt), replies stay pure
functions of the input, and the assertions are about what the layer used and
recorded, never about elapsed time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from langchain_core.messages import BaseMessage, HumanMessage

from attention_moa_graph import MoAOptions, Proposer, create_attention_moa
from attention_moa_graph.evaluation.systems import SystemSpec
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import prompt_text
from tests.unit_tests.test_stragglers import is_critique

pytestmark = pytest.mark.anyio
QUESTION = [HumanMessage("Which sorting algorithm should I use?")]


def is_refine(messages: Sequence[BaseMessage]) -> bool:
    return "<suggestion-" in prompt_text(messages)


def is_draft(messages: Sequence[BaseMessage]) -> bool:
    return not is_critique(messages) and not is_refine(messages)


def build(
    slow_on: Callable[[Sequence[BaseMessage]], bool],
    slow_agents: Sequence[str] = ("c",),
    slow: float = 1.0,
    **options: object,
):
    """Agents a, b, c; the slow ones take `slow` seconds on `slow_on` prompts."""

    def model(name: str) -> ScriptedChatModel:
        if name not in slow_agents:
            return ScriptedChatModel(model_name=name)
        return ScriptedChatModel(
            model_name=name, latency=lambda m: slow if slow_on(m) else 0.0
        )

    chair = ScriptedChatModel(model_name="chair")
    graph = create_attention_moa(
        [Proposer(n, model(n)) for n in ("a", "b", "c")],
        aggregator=chair,
        max_layers=1,
        call_timeout=60,
        **options,  # type: ignore[arg-type]
    )
    return graph, chair


async def run(graph, path: str) -> dict:
    """One run of the question on the async or the sync path."""
    state = {"messages": QUESTION}
    return await graph.ainvoke(state) if path == "async" else graph.invoke(state)


@pytest.mark.parametrize("path", ["async", "sync"])
async def test_a_late_draft_keeps_its_agent_out_of_the_layer(path: str) -> None:
    graph, chair = build(is_draft, stage_deadline=0.2)
    result = await run(graph, path)
    record = result["layers"][0]
    assert record["late_agents"] == {"c": "draft"}
    assert record["failures"] == {}
    assert set(record["drafts"]) == set(record["refined"]) == {"a", "b"}
    # Nobody critiques c's missing draft, and c critiques nobody.
    assert {t: sorted(c) for t, c in record["critiques"].items()} == {
        "a": ["a", "b"],
        "b": ["a", "b"],
    }
    assert "c" not in result["usage"]["by_agent"]  # no call of c was used
    (summary,) = chair.calls
    assert prompt_text(summary.messages).count("<candidate-") == 2


@pytest.mark.parametrize("path", ["async", "sync"])
async def test_a_late_refinement_leaves_the_draft_to_the_summary(path: str) -> None:
    graph, chair = build(is_refine, stage_deadline=0.2)
    record = (await run(graph, path))["layers"][0]
    assert record["late_agents"] == {"c": "refine"}
    assert set(record["refined"]) == {"a", "b"}
    # c drafted and critiqued in time: all nine critiques were used.
    assert sum(len(c) for c in record["critiques"].values()) == 9
    (summary,) = chair.calls
    text = prompt_text(summary.messages)
    assert text.count("<candidate-") == 3
    assert record["drafts"]["c"] in text
    assert all(record["refined"][n] in text for n in ("a", "b"))


async def test_the_stage_deadline_covers_critiques_unless_they_have_their_own() -> None:
    # Nine critiques share the deadline: a margin a loaded machine keeps.
    graph, _ = build(is_critique, slow=3.0, stage_deadline=1.0)
    record = (await graph.ainvoke({"messages": QUESTION}))["layers"][0]
    assert record["late_critiques"] == ["c->a", "c->b", "c->c"]
    assert record["late_agents"] == {}
    own, _ = build(is_critique, slow=1.2, stage_deadline=1.0, critique_deadline=30)
    record = (await own.ainvoke({"messages": QUESTION}))["layers"][0]
    assert record["late_critiques"] == []
    assert sum(len(c) for c in record["critiques"].values()) == 9


async def test_too_few_drafts_in_time_are_sent_again_without_a_deadline() -> None:
    # b and c miss the deadline; min_agents=2 needs one of them back, so both
    # are asked again, and the second try waits for the slow replies.
    graph, _ = build(
        is_draft, slow_agents=("b", "c"), slow=0.4, stage_deadline=0.2, min_agents=2
    )
    result = await graph.ainvoke({"messages": QUESTION})
    record = result["layers"][0]
    assert set(record["drafts"]) == {"a", "b", "c"}
    # They answered in the end, so they are not recorded as late.
    assert record["late_agents"] == {}
    assert result["usage"]["by_role"]["draft"]["calls"] == 3
    assert result["usage"]["by_agent"]["b"]["calls"] == 1 + 3 + 1


def test_evaluation_systems_carry_the_stage_deadline() -> None:
    two = ("demo:a", "demo:b")
    deadline = MoAOptions().replace(stage_deadline=0.3)
    plain = SystemSpec(kind="attention-moa", proposers=two)
    late = SystemSpec(kind="attention-moa", proposers=two, options=deadline)
    assert "stage_deadline" not in plain.describe()
    assert late.describe()["stage_deadline"] == 0.3
    assert plain.fingerprint() != late.fingerprint()
    with pytest.raises(ValueError, match="attention-moa only"):
        SystemSpec(kind="moa", proposers=("demo:a",), options=deadline)
    with pytest.raises(ValueError, match="`stage_deadline` must be"):
        MoAOptions().replace(stage_deadline=-1)
