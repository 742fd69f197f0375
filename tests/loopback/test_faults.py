"""Failures at the real-client boundary: what is retried, what degrades, what stops."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from attention_moa_graph import (
    AgentFailedError,
    AgentsExhaustedError,
    AggregatorFailedError,
    Proposer,
    create_attention_moa,
)
from tests.helpers import fast_retries, openai_model

pytestmark = pytest.mark.anyio

QUESTION = {"messages": [("user", "What causes tides?")]}
NAMES = ["a", "b", "c"]


def build(server, *, retries=3, **kwargs):
    kwargs.setdefault("max_layers", 2)
    return create_attention_moa(
        [Proposer(n, openai_model(server.base_url, n)) for n in NAMES],
        aggregator=openai_model(server.base_url, "agg"),
        retry_policy=fast_retries(retries),
        **kwargs,
    )


@pytest.fixture
async def clean_answer(fake_server):
    """The answer of a fault-free run, to compare against."""
    result = await build(fake_server).ainvoke(QUESTION)
    fake_server.log.clear()
    return result


@pytest.mark.parametrize(
    "fault", ["429", "500", "503", "garbage", "empty", "drop", "hang"]
)
async def test_transient_faults_are_retried_and_change_nothing(
    fault, fake_server, clean_answer
):
    fake_server.scripted_faults["b"] = [fault, fault]
    result = await build(fake_server, call_timeout=1.0).ainvoke(QUESTION)

    assert result["final_answer"] == clean_answer["final_answer"]
    assert result["layers"] == clean_answer["layers"]
    assert all(not r["failures"] for r in result["layers"])
    faulty = [r for r in fake_server.requests_for("b") if r.fault]
    assert [r.fault for r in faulty] == [fault, fault]
    # b's first call of the run took three attempts; every other call one.
    assert len(fake_server.requests_for("b")) == 2 * 5 + 2


async def test_client_retries_do_not_multiply_the_graphs(fake_server):
    fake_server.scripted_faults["b"] = ["500"] * 20
    proposers = [Proposer(n, openai_model(fake_server.base_url, n)) for n in NAMES]
    proposers[1] = Proposer("b", openai_model(fake_server.base_url, "b", max_retries=2))
    graph = create_attention_moa(
        proposers,
        aggregator=openai_model(fake_server.base_url, "agg"),
        max_layers=1,
        retry_policy=fast_retries(3),
    )
    result = await graph.ainvoke(QUESTION)
    # One draft call, three graph attempts, no client retries under them.
    assert len(fake_server.requests_for("b")) == 3
    assert "b" in result["layers"][0]["failures"]
    assert proposers[1].model.max_retries == 2  # the caller's instance is untouched


@pytest.mark.parametrize("fault", ["400", "401"])
async def test_a_non_transient_failure_stops_at_once(fault, fake_server):
    fake_server.scripted_faults["c"] = [fault]
    with pytest.raises(AgentFailedError, match="'c' failed in draft at layer 1") as err:
        await build(fake_server).ainvoke(QUESTION)
    assert err.value.agent == "c" and err.value.role == "draft"
    assert len(fake_server.requests_for("c")) == 1


async def test_a_dead_agent_is_dropped_and_the_layer_goes_on(fake_server):
    fake_server.scripted_faults["c"] = ["500"] * 100
    result = await build(fake_server).ainvoke(QUESTION)

    for record in result["layers"]:
        assert sorted(record["drafts"]) == ["a", "b"]
        assert sorted(record["refined"]) == ["a", "b"]
        assert sorted(record["critiques"]) == ["a", "b"]
        assert all(sorted(by) == ["a", "b"] for by in record["critiques"].values())
        assert list(record["failures"]) == ["c"]
        assert "draft: OpenAIAPIError" in record["failures"]["c"]
    assert len(fake_server.requests_for("c")) == 2 * 3  # 3 attempts per layer
    assert result["stop_reason"] == "max_layers"


async def test_a_critic_that_dies_mid_layer_is_dropped_from_what_follows(fake_server):
    # c drafts, then every later call of c fails.
    fake_server.scripted_faults["c"] = [None] + ["503"] * 100
    result = await build(fake_server, max_layers=1).ainvoke(QUESTION)
    record = result["layers"][0]
    assert sorted(record["drafts"]) == ["a", "b", "c"]
    assert sorted(record["refined"]) == ["a", "b"]
    assert "c" in record["failures"]
    assert record["failures"]["c"].startswith(("cross_attention", "self_attention"))


async def test_too_few_agents_stop_the_run_and_a_resume_retries_only_them(fake_server):
    fake_server.scripted_faults["b"] = ["500"] * 6
    fake_server.scripted_faults["c"] = ["500"] * 6
    graph = build(fake_server, min_agents=2, checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "exhausted"}}
    with pytest.raises(AgentsExhaustedError, match="min_agents") as err:
        await graph.ainvoke(QUESTION, thread)
    assert err.value.layer == 1
    # Three attempts, then one strict second try of three more. b's and c's
    # second tries run at once; the first to fail ends the run, cancelling the
    # other's, which may be short of its last attempt.
    (stopper,) = err.value.failures
    other = ({"b", "c"} - {stopper}).pop()
    assert len(fake_server.requests_for(stopper)) == 6
    assert 4 <= len(fake_server.requests_for(other)) <= 6
    assert len(fake_server.requests_for("a")) == 1

    # The provider is back (the scripted faults are used up): resume.
    result = await graph.ainvoke(None, thread)
    assert len(result["layers"]) == 2
    assert all(not r["failures"] for r in result["layers"])
    first_layer_drafts = [
        r
        for r in fake_server.requests_for("a")
        if r.messages == [{"role": "user", "content": "What causes tides?"}]
    ]
    assert len(first_layer_drafts) == 1  # a's finished draft was not repeated


@pytest.mark.parametrize("durability", ["async", "exit"])
async def test_a_failing_aggregator_stops_the_run_with_a_typed_error(
    fake_server, durability
):
    """Also with durability "exit": the error is the run's exit, so it is saved."""
    fake_server.scripted_faults["agg"] = ["503"] * 3
    graph = build(fake_server, checkpointer=InMemorySaver())
    thread = {"configurable": {"thread_id": "agg"}}
    with pytest.raises(AggregatorFailedError, match="summary call of 'aggregator'"):
        await graph.ainvoke(QUESTION, thread, durability=durability)
    calls_before = {n: len(fake_server.requests_for(n)) for n in NAMES}
    result = await graph.ainvoke(None, thread, durability=durability)
    assert result["final_answer"]
    # Resuming redid the summary only: layer 1's proposer calls were not repeated.
    layer_two_calls = 5  # draft, 2 cross, 1 self, refine per agent
    for name in NAMES:
        assert (
            len(fake_server.requests_for(name)) == calls_before[name] + layer_two_calls
        )


async def test_the_sync_path_retries_and_times_out_too(fake_server, clean_answer):
    fake_server.scripted_faults["a"] = ["hang", "429"]
    result = build(fake_server, call_timeout=1.0).invoke(QUESTION)
    assert result["final_answer"] == clean_answer["final_answer"]
    assert [r.fault for r in fake_server.requests_for("a")][:3] == ["hang", "429", None]


async def test_a_client_left_at_its_default_retry_setting_does_not_retry(fake_server):
    from langchain_openai import ChatOpenAI

    fake_server.scripted_faults["b"] = ["500"] * 20
    default_client = ChatOpenAI(
        model="b", base_url=fake_server.base_url, api_key="sk-test", timeout=10
    )
    assert default_client.max_retries is None  # the SDK's default: 2 retries
    proposers = [Proposer(n, openai_model(fake_server.base_url, n)) for n in NAMES]
    proposers[1] = Proposer("b", default_client)
    graph = create_attention_moa(
        proposers,
        aggregator=openai_model(fake_server.base_url, "agg"),
        max_layers=1,
        retry_policy=fast_retries(2),
    )
    await graph.ainvoke(QUESTION)
    assert len(fake_server.requests_for("b")) == 2


async def test_usage_is_counted_when_a_custom_endpoint_streams(fake_server):
    from langchain_openai import ChatOpenAI

    from attention_moa_graph.adapters.streaming import astream_answer

    def plain(name):  # stream_usage left off, as users often do
        return ChatOpenAI(
            model=name, base_url=fake_server.base_url, api_key="sk-test", max_retries=0
        )

    assert plain("a").stream_usage is None  # unset: off for a custom base_url
    graph = create_attention_moa(
        [Proposer(n, plain(n)) for n in NAMES], aggregator=plain("agg"), max_layers=1
    )
    events = [e async for e in astream_answer(graph, QUESTION)]
    result = events[-1].data
    assert all(r.stream for r in fake_server.log)  # LangGraph streamed every call
    assert all(r.include_usage for r in fake_server.log)
    assert result["usage"]["by_role"]["draft"]["output_tokens"] > 0


async def test_sync_and_async_runs_and_streams_mix_with_the_real_client(fake_server):
    # langchain-openai shares one async HTTP client per endpoint in a process,
    # and it fails once a second event loop uses it. Sync callers' calls run
    # on the package's loop through the models' sync interface, so sync runs,
    # sync streams (which run the graph on that loop) and async runs mix.
    from attention_moa_graph import AttentionMoAChatModel, astream_answer

    graph = build(fake_server, max_layers=1)
    first = (await graph.ainvoke(QUESTION))["final_answer"]
    assert graph.invoke(QUESTION)["final_answer"] == first
    model = AttentionMoAChatModel(
        proposers=[Proposer(n, openai_model(fake_server.base_url, n)) for n in NAMES],
        aggregator=openai_model(fake_server.base_url, "agg"),
        max_layers=1,
    )
    for _ in range(2):
        assert "".join(c.content for c in model.stream("What causes tides?")) == first
    events = [e async for e in astream_answer(graph, QUESTION)]
    assert "".join(e.data for e in events if e.kind == "token") == first
    assert (await model.ainvoke("What causes tides?")).content == first
    assert not [r for r in fake_server.log if r.fault]


async def test_max_tokens_is_sent_with_every_request(fake_server):
    graph = build(fake_server, max_layers=2, max_tokens=128)
    await graph.ainvoke(QUESTION)
    # A server other than OpenAI's gets the classic `max_tokens`, which every
    # OpenAI-compatible server knows (langchain-openai alone would send
    # `max_completion_tokens`).
    verdicts = [r for r in fake_server.log if r.params.get("response_format")]
    assert [r.params["max_tokens"] for r in verdicts] == [32]
    sent = {r.params.get("max_tokens") for r in fake_server.log if r not in verdicts}
    assert sent == {128} and len(fake_server.log) == 16 + 18
    assert not [r for r in fake_server.log if "max_completion_tokens" in r.params]


def test_openai_itself_gets_its_newer_token_cap_field():
    from langchain_openai import ChatOpenAI

    from attention_moa_graph._calls.models import provider_params

    openai_model = ChatOpenAI(model="gpt-4.1", api_key="unused")
    # Left to langchain-openai, which sends it as `max_completion_tokens`.
    assert provider_params(openai_model, {"max_tokens": 9}) == {"max_tokens": 9}
    other = ChatOpenAI(
        model="m", base_url="http://127.0.0.1:1/v1", api_key="unused",
        extra_body={"top_k": 3},
    )  # fmt: skip
    assert provider_params(other, {"max_tokens": 9, "temperature": 0.1}) == {
        "temperature": 0.1,
        "extra_body": {"top_k": 3, "max_tokens": 9},
    }


async def test_repeat_penalty_reaches_an_openai_protocol_server(fake_server):
    graph = build(fake_server, max_layers=1, repeat_penalty=1.2)
    await graph.ainvoke(QUESTION, context={"repeat_penalty": 1.3})
    assert {r.params.get("repeat_penalty") for r in fake_server.log} == {1.3}


async def test_a_seeded_model_is_retried_with_the_next_seed(fake_server):
    # With the same seed and prompt a server samples the same reply again: an
    # empty reply would come back on every try.
    fake_server.scripted_faults["a"] = ["empty", "empty"]
    graph = create_attention_moa(
        [
            Proposer("a", openai_model(fake_server.base_url, "a", seed=7)),
            Proposer("b", openai_model(fake_server.base_url, "b")),
        ],
        aggregator=openai_model(fake_server.base_url, "agg"),
        max_layers=1,
        retry_policy=fast_retries(3),
    )
    result = await graph.ainvoke(QUESTION)
    assert not result["layers"][0]["failures"]
    drafts = [r for r in fake_server.log if r.model == "a"][:3]
    assert [r.params.get("seed") for r in drafts] == [7, 8, 9]
    assert {r.params.get("seed") for r in fake_server.log if r.model == "b"} == {None}
