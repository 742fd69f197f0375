"""Straggler policies: hedged requests and the critique deadline.

Latency here is part of the test double: a model that is slow on some
prompts (a pure function of the prompt) or slow on its first request only
(a provider with a straggling replica). Replies stay pure functions of the
input. No assertion is about elapsed time; each checks what was sent, what
was cancelled and what the layer record says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from pydantic import PrivateAttr

from attention_moa_graph import MoAOptions, Proposer, create_attention_moa
from attention_moa_graph._calls.runner import acall_model
from attention_moa_graph.evaluation.baselines import create_single
from attention_moa_graph.evaluation.systems import SystemSpec
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import prompt_text

pytestmark = pytest.mark.anyio
QUESTION = [HumanMessage("Which sorting algorithm should I use?")]


class FirstRequestStraggles(ScriptedChatModel):
    """The first request waits `slow` seconds; every later one answers at once."""

    slow: float = 5.0
    _started: int = PrivateAttr(default=0)
    _cancelled: int = PrivateAttr(default=0)

    def _first(self) -> bool:
        with self._lock:
            self._started += 1
            return self._started == 1

    async def _answer_later(
        self,
        messages: list[BaseMessage],
        run_manager: AsyncCallbackManagerForLLMRun | None,
        kwargs: dict | None = None,
    ) -> tuple[str, UsageMetadata, list]:
        if self._first():
            try:
                await asyncio.sleep(self.slow)
            except asyncio.CancelledError:
                self._cancelled += 1
                raise
        return await super()._answer_later(messages, run_manager, kwargs or {})

    def _answer_now(
        self,
        messages: list[BaseMessage],
        run_manager: CallbackManagerForLLMRun | None,
        kwargs: dict | None = None,
    ) -> tuple[str, UsageMetadata, list]:
        if self._first():
            import time

            time.sleep(self.slow)
        return super()._answer_now(messages, run_manager, kwargs or {})


async def test_a_slow_call_is_sent_again_and_the_first_reply_wins() -> None:
    model = FirstRequestStraggles(model_name="m", slow=30.0)
    reply = await acall_model(model, QUESTION, {}, {}, timeout=60, hedge_after=0.05)
    assert reply.text == ScriptedChatModel(model_name="m").invoke(QUESTION).text
    assert model._started == 2  # the original and its hedge
    assert model._cancelled == 1  # the straggler was cancelled, not awaited
    assert len(model.calls) == 1  # only the hedge answered


async def test_a_call_answered_before_the_hedge_delay_is_sent_once() -> None:
    model = FirstRequestStraggles(model_name="m", slow=0.0)
    await acall_model(model, QUESTION, {}, {}, timeout=60, hedge_after=5.0)
    assert model._started == 1


@pytest.mark.parametrize("path", ["async", "sync"])
async def test_the_graph_hedges_a_straggling_summary(path: str) -> None:
    # The sync path runs the same engine on the package's loop, calling the
    # model in worker threads: a blocked thread cannot be cancelled, so there
    # the straggler is left to finish on its own (it is not awaited).
    chair = FirstRequestStraggles(
        model_name="chair", slow=30.0 if path == "async" else 3.0
    )
    graph = create_attention_moa(
        [Proposer(n, ScriptedChatModel(model_name=n)) for n in ("a", "b")],
        aggregator=chair,
        max_layers=1,
        hedge_after=0.05,
        call_timeout=60,
    )
    state = {"messages": QUESTION}
    result = await graph.ainvoke(state) if path == "async" else graph.invoke(state)
    assert result["final_answer"].startswith("chair")
    assert chair._started == 2
    assert chair._cancelled == (1 if path == "async" else 0)
    # The usage report counts the answer used, once.
    assert result["usage"]["by_role"]["summary"]["calls"] == 1


def is_critique(messages: Sequence[BaseMessage]) -> bool:
    text = prompt_text(messages)
    return "<peer-answer-" in text or (
        "<own-answer-" in text and "<suggestion-" not in text
    )


def build(deadline: float | None, slow: float = 1.0):
    agents = [Proposer(n, ScriptedChatModel(model_name=n)) for n in ("a", "b")]
    straggler = ScriptedChatModel(
        model_name="c", latency=lambda m: slow if is_critique(m) else 0.0
    )
    return create_attention_moa(
        [*agents, Proposer("c", straggler)],
        aggregator=ScriptedChatModel(model_name="chair"),
        max_layers=1,
        critique_deadline=deadline,
        call_timeout=60,
    ), [a.model for a in agents]


@pytest.mark.parametrize("path", ["async", "sync"])
async def test_late_critiques_are_left_out_and_recorded(path: str) -> None:
    graph, (a, _b) = build(deadline=0.2)
    state = {"messages": QUESTION}
    result = await graph.ainvoke(state) if path == "async" else graph.invoke(state)
    record = result["layers"][0]
    assert record["late_critiques"] == ["c->a", "c->b", "c->c"]
    # c is no failed agent: it refines (without its own late self-critique)
    # and its answer reaches the summary.
    assert record["failures"] == {}
    assert set(record["refined"]) == {"a", "b", "c"}
    assert {t: sorted(c) for t, c in record["critiques"].items()} == {
        "a": ["a", "b"],
        "b": ["a", "b"],
        "c": ["a", "b"],
    }
    refine = [c for c in a.calls if c.metadata.get("moa_role") == "refine"]
    assert len(refine) == 1
    # a's refinement saw its own and b's suggestions: c's came too late.
    assert prompt_text(refine[0].messages).count("<suggestion-") == 2


async def test_without_a_deadline_every_critique_is_awaited() -> None:
    graph, _ = build(deadline=None, slow=0.3)
    record = (await graph.ainvoke({"messages": QUESTION}))["layers"][0]
    assert record["late_critiques"] == []
    assert all(len(c) == 3 for c in record["critiques"].values())


@pytest.mark.parametrize("knob", ["hedge_after", "critique_deadline", "stage_deadline"])
@pytest.mark.parametrize("value", [0, -1.0, "1", True])
def test_straggler_knobs_must_be_positive_seconds(knob: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"`{knob}` must be a positive number"):
        create_attention_moa(["demo:a", "demo:b"], aggregator="demo:c", **{knob: value})


async def test_baselines_hedge_too() -> None:
    model = FirstRequestStraggles(model_name="solo", slow=30.0)
    single = create_single(model, hedge_after=0.05, call_timeout=60)
    result = await single.ainvoke({"messages": QUESTION})
    assert result["final_answer"].startswith("solo")
    assert (model._started, model._cancelled) == (2, 1)


def test_evaluation_systems_carry_the_knobs() -> None:
    def spec(kind: str = "attention-moa", **options):
        return SystemSpec(
            kind=kind,  # type: ignore[arg-type]
            proposers=("demo:a", "demo:b"),
            options=MoAOptions().replace(**options),
        )

    plain, hedged = spec(), spec(hedge_after=0.5)
    late, batched = spec(critique_deadline=0.3), spec(critique_mode="batched")
    # Hedging leaves answers alone; a critique deadline or batching changes them.
    assert not {"critique_deadline", "critique_mode"} & set(plain.describe())
    assert plain.fingerprint() == hedged.fingerprint() != late.fingerprint()
    assert batched.fingerprint() not in (plain.fingerprint(), late.fingerprint())
    for knob in ({"critique_deadline": 0.3}, {"critique_mode": "batched"}):
        with pytest.raises(ValueError, match="attention-moa only"):
            spec("moa", **knob)
    # The baselines take the call policy: a hedged classic MoA is hedged.
    moa = spec("moa", hedge_after=0.5, max_layers=2)
    assert moa.describe() == spec("moa", max_layers=2).describe()
    assert moa.build().invoke({"messages": QUESTION})["usage"]["total"]["calls"] == 3
    # A bad value fails where the options are made, before any system exists.
    for option, value in (("hedge_after", 0), ("max_concurrent_calls", 0)):
        with pytest.raises(ValueError, match=f"`{option}` must be"):
            spec(**{option: value})


def shared_model_graph(cap: int | None):
    shared = ScriptedChatModel(model_name="shared", latency=0.02)
    graph = create_attention_moa(
        [Proposer(n, shared) for n in ("a", "b", "c")],
        aggregator=shared,
        max_layers=1,
        max_concurrent_calls=cap,
    )
    return graph, shared


async def test_a_call_cap_holds_across_concurrent_runs() -> None:
    graph, shared = shared_model_graph(cap=2)
    results = await asyncio.gather(
        *(graph.ainvoke({"messages": [HumanMessage(f"q{i}")]}) for i in range(3))
    )
    assert shared.peak_in_flight == 2
    assert all(r["usage"]["total"]["calls"] == 3 + 9 + 3 + 1 for r in results)
    uncapped, free = shared_model_graph(cap=None)
    await uncapped.ainvoke({"messages": QUESTION})
    assert free.peak_in_flight == 9  # the critique stage, all at once


def test_the_sync_path_is_capped_too() -> None:
    graph, shared = shared_model_graph(cap=2)
    graph.invoke({"messages": QUESTION})
    assert shared.peak_in_flight == 2


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "4"])
def test_the_call_cap_must_be_a_whole_number(value: object) -> None:
    with pytest.raises(ValueError, match="`max_concurrent_calls` must be a whole"):
        create_attention_moa(
            ["demo:a", "demo:b"], aggregator="demo:c", max_concurrent_calls=value
        )


async def test_waiting_for_a_call_slot_counts_against_the_critique_deadline() -> None:
    # One slot: the four critiques (0.2 s each) queue. The first ends at 0.2 s;
    # the second gets the slot with 0.15 s of its 0.35 s left and times out;
    # the last two get it after their deadline has passed.
    shared = ScriptedChatModel(
        model_name="shared", latency=lambda m: 0.2 if is_critique(m) else 0.0
    )
    graph = create_attention_moa(
        [Proposer(n, shared) for n in ("a", "b")],
        aggregator=shared,
        max_layers=1,
        max_concurrent_calls=1,
        critique_deadline=0.35,
    )
    record = (await graph.ainvoke({"messages": QUESTION}))["layers"][0]
    assert len(record["late_critiques"]) == 3
    assert sum(len(c) for c in record["critiques"].values()) == 1
