"""The ensemble as a drop-in chat model: LCEL chains, batch, streaming, tracing."""

from __future__ import annotations

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from attention_moa_graph import STOP_SIGNAL, AttentionMoAChatModel, Proposer
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import aggregator_stopping_at, fake_agents

pytestmark = pytest.mark.anyio


def model(**kwargs) -> AttentionMoAChatModel:
    kwargs.setdefault("max_layers", 2)
    return AttentionMoAChatModel(
        proposers=fake_agents(["a", "b"]),
        aggregator=ScriptedChatModel(model_name="agg", chunk_size=1),
        **kwargs,
    )


PROMPT = ChatPromptTemplate.from_messages(
    [("system", "Answer briefly."), ("human", "{question}")]
)


async def test_it_works_in_an_lcel_chain_sync_and_async():
    chain = PROMPT | model() | StrOutputParser()
    sync = chain.invoke({"question": "Why is the sea salty?"})
    asynchronous = await chain.ainvoke({"question": "Why is the sea salty?"})
    direct = model().graph.invoke(
        {"messages": PROMPT.invoke({"question": "Why is the sea salty?"}).to_messages()}
    )
    assert sync == asynchronous == direct["final_answer"]
    assert sync.startswith("agg reply")


async def test_batch_answers_each_input_separately():
    chain = PROMPT | model(max_layers=1) | StrOutputParser()
    answers = chain.batch([{"question": "one?"}, {"question": "two?"}])
    assert len(set(answers)) == 2
    assert answers == await chain.abatch([{"question": "one?"}, {"question": "two?"}])


async def test_the_reply_carries_usage_and_the_runs_facts():
    reply = await model().ainvoke("hi")
    assert reply.usage_metadata["total_tokens"] > 0
    meta = reply.response_metadata
    assert meta["stop_reason"] == "max_layers" and meta["layers"] == 2
    assert meta["usage"]["total"]["calls"] == 9 + 11  # with the verdict
    assert (
        reply.usage_metadata["total_tokens"] == meta["usage"]["total"]["total_tokens"]
    )


async def test_astream_yields_the_final_calls_tokens_as_they_come():
    chunks = [c async for c in model().astream("Tell me about owls.")]
    texts = [c.content for c in chunks if c.content]
    final = await model().ainvoke("Tell me about owls.")
    assert len(texts) > 2  # word by word, not one block
    assert "".join(texts) == final.content
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == final.content
    assert merged.usage_metadata["total_tokens"] == final.usage_metadata["total_tokens"]


def test_sync_stream_matches_too():
    texts = [c.content for c in model().stream("Tell me about owls.")]
    assert "".join(texts) == model().invoke("Tell me about owls.").content


async def test_an_early_stop_streams_the_stopping_layers_summary():
    stopping = AttentionMoAChatModel(
        proposers=fake_agents(["a", "b"]),
        aggregator=ScriptedChatModel(
            model_name="agg", reply=aggregator_stopping_at(2), chunk_size=1
        ),
        max_layers=2,
    )
    texts = [c.content async for c in stopping.astream("hi") if c.content]
    final = await stopping.ainvoke("hi")
    assert final.response_metadata["stop_reason"] == "early_stop"
    assert STOP_SIGNAL not in "".join(texts)
    assert "".join(texts) == final.content


async def test_inner_calls_are_traced_under_the_models_run(call_log):
    from langchain_core.callbacks import BaseCallbackHandler

    class Plain(BaseCallbackHandler):
        def __init__(self) -> None:
            self.started: list = []

        def on_chat_model_start(self, serialized, messages, **kwargs) -> None:
            self.started.append(kwargs.get("metadata") or {})

    plain = Plain()
    await model().ainvoke("hi", {"callbacks": [call_log, plain]})
    roles = [c.get("moa_role") for c in call_log.calls]  # a tracer
    assert roles.count(None) == 1  # the adapter's own run
    assert roles.count("draft") == 4 and roles.count("residual") == 1
    # Any other handler sees one model call, as for any chat model.
    assert [m.get("moa_role") for m in plain.started] == [None]


async def test_bad_arguments_fail_when_the_model_is_built():
    with pytest.raises(ValueError, match="cross_attention=False"):
        AttentionMoAChatModel(proposers=[Proposer("x", "demo:x")], aggregator="demo:c")


async def test_the_compiled_graph_composes_in_lcel_with_a_bound_context():
    from langchain_core.runnables import RunnableLambda

    from attention_moa_graph import create_attention_moa

    graph = create_attention_moa(fake_agents(["a", "b"]), aggregator="demo:chair")
    chain = (
        RunnableLambda(lambda q: {"messages": [("user", q)]})
        | graph.bind(context={"max_layers": 1})
        | RunnableLambda(lambda out: (out["final_answer"], len(out["layers"])))
    )
    answer, layers = await chain.ainvoke("What is dew?")
    assert layers == 1 and answer.startswith("[demo] Chair's summary")
    assert chain.batch(["a?", "b?"])[1][1] == 1


@pytest.mark.parametrize("where", ["field", "call"])
async def test_stop_ends_the_answer_before_the_first_stop_sequence(where):
    # The aggregator's answer, word by word: "agg reply <digest>".
    built = model(**({"stop": [" reply"]} if where == "field" else {}))
    per_call = {"stop": [" reply"]} if where == "call" else {}
    reply = await built.ainvoke("hi", **per_call)
    assert reply.content == "agg"
    streamed = [c.content async for c in built.astream("hi", **per_call)]
    assert "".join(streamed) == "agg"
    sync = "".join(c.content for c in built.stream("hi", **per_call))
    assert sync == "agg" and built.invoke("hi", **per_call).content == "agg"
    # A stop sequence that never occurs changes nothing.
    assert (await model().ainvoke("hi", stop=["zzz"])).content.startswith("agg reply")


def test_a_stop_sequence_split_across_chunks_is_still_found():
    from attention_moa_graph.adapters.streaming import StopGate

    gate = StopGate(["END"])
    out = [gate.feed(piece) for piece in ("one E", "N", "D two")]
    assert "".join(out) + gate.finish() == "one "
    gate = StopGate(["END"])
    out = [gate.feed(piece) for piece in ("one E", "ND", "x")]
    assert "".join(out) == "one "
    gate = StopGate(["END"])
    assert gate.feed("one E") + gate.feed("x") + gate.finish() == "one Ex"
