"""Replies that echo the prompts' fence tags never carry them into any output.

Small real models copy the tags around quoted material (`</round-2-3fa9…>`)
into their replies. Here every reply of the loopback server echoes one, and
the real langchain-openai client carries it back.
"""

from __future__ import annotations

import re

import pytest

from attention_moa_graph import Proposer, astream_answer, create_attention_moa
from attention_moa_graph.testing.fake_server import default_reply
from tests.helpers import ANY_TAG, openai_model

pytestmark = pytest.mark.anyio
QUESTION = {"messages": [("user", "What causes tides?")]}


def echoing(model, messages):
    """The reply, wrapped in a tag copied from the prompt (or a made-up one)."""
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    tags = re.findall(r"</?[a-z-]+(?:-\d+)?-[0-9a-f]{12}>", prompt)
    tag = tags[-1] if tags else "</round-2-3fa9…>"
    text = default_reply(model, messages)
    return f"{tag}\n{text} {tag.replace('<', '</', 1) if '/' not in tag else tag}"


def outputs(result) -> list[str]:
    texts = [result["final_answer"]]
    for record in result["layers"]:
        texts += [*record["drafts"].values(), *record["refined"].values()]
        texts += [c for by in record["critiques"].values() for c in by.values()]
        texts.append(record["summary"])
        if record["residual"] is not None:
            texts.append(record["residual"])
    return texts


@pytest.mark.parametrize("mode", ["pairwise", "batched"])
async def test_no_fence_tag_reaches_a_stage_output_or_the_answer(fake_server, mode):
    fake_server.reply = echoing
    graph = create_attention_moa(
        [Proposer(n, openai_model(fake_server.base_url, n)) for n in ("a", "b")],
        aggregator=openai_model(fake_server.base_url, "agg"),
        max_layers=2,
        critique_mode=mode,
    )
    result = await graph.ainvoke(QUESTION)
    # The server did echo tags, and none survived.
    assert any(ANY_TAG.search(r.messages[-1]["content"]) for r in fake_server.log)
    texts = outputs(result)
    assert len(texts) == 1 + 2 * (2 + 2 + 4 + 1) + 1
    assert all(t and not ANY_TAG.search(t) for t in texts)
    assert result["final_answer"].startswith("agg answers")
    # The streamed answer is cleaned the same way, token by token.
    events = [e async for e in astream_answer(graph, QUESTION)]
    streamed = "".join(e.data for e in events if e.kind == "token")
    assert streamed == result["final_answer"]
    assert len([e for e in events if e.kind == "token"]) > 2


async def test_a_reply_that_is_only_a_tag_is_retried_as_empty(fake_server):
    from tests.helpers import fast_retries

    answered = {"agg": 0}

    def tag_first(model, messages):
        if model == "agg" and answered["agg"] == 0:
            answered["agg"] += 1
            return "</candidate-3fa94c0d1e2b>"
        return default_reply(model, messages)

    fake_server.reply = tag_first
    graph = create_attention_moa(
        [Proposer(n, openai_model(fake_server.base_url, n)) for n in ("a", "b")],
        aggregator=openai_model(fake_server.base_url, "agg"),
        max_layers=1,
        retry_policy=fast_retries(),
    )
    result = await graph.ainvoke(QUESTION)
    assert result["final_answer"].startswith("agg answers")
    assert len(fake_server.requests_for("agg")) == 2


async def test_markup_the_user_asked_for_survives_every_stage(fake_server):
    wanted = (
        "<item-2024>v</item-2024> <build-1a2b3c4d>ok</build-1a2b3c4d> "
        "<answer-1>x</answer-1> <candidate>c</candidate>"
    )
    question = {"messages": [("user", f"Reply with exactly this XML: {wanted}")]}

    def obliging(model, messages):
        # The markup asked for, with a fence tag of the prompt's echoed after it.
        return f"Here it is: {wanted}\n</round-1-3fa94c0d1e2b>"

    fake_server.reply = obliging
    graph = create_attention_moa(
        [Proposer(n, openai_model(fake_server.base_url, n)) for n in ("a", "b")],
        aggregator=openai_model(fake_server.base_url, "agg"),
        max_layers=2,
    )
    result = await graph.ainvoke(question)
    assert result["final_answer"] == f"Here it is: {wanted}"
    assert all(t.endswith(wanted) for t in outputs(result))
    events = [e async for e in astream_answer(graph, question)]
    streamed = "".join(e.data for e in events if e.kind == "token")
    assert streamed == result["final_answer"]
