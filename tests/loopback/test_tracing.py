"""LangSmith sees one root run per query, a run per layer named `layer_k`, and one
LLM run per model call with its role, agent and target; and no provider key."""

from __future__ import annotations

from collections import Counter

import pytest
from langsmith import Client, tracing_context

from attention_moa_graph import Proposer, create_attention_moa
from tests.helpers import openai_model
from tests.langsmith_capture import CaptureServer

pytestmark = pytest.mark.anyio

PLANTED = "sk-planted-for-tracing-7c1e9a"


def meta(run) -> dict:
    return (run.get("extra") or {}).get("metadata") or {}


async def test_the_trace_tree_names_layers_and_tags_every_model_call(fake_server):
    graph = create_attention_moa(
        [
            Proposer(n, openai_model(fake_server.base_url, n, api_key=PLANTED))
            for n in ("a", "b", "c")
        ],
        aggregator=openai_model(fake_server.base_url, "agg", api_key=PLANTED),
        max_layers=2,
    )
    with CaptureServer() as capture:
        client = Client(api_url=capture.url, api_key="lsv2-test-not-real")
        with tracing_context(enabled=True, client=client, project_name="moa-test"):
            result = await graph.ainvoke({"messages": [("user", "What is fog?")]})
        client.flush()
        runs = list(capture.runs.values())
        raw = list(capture.raw)

    by_id = {r["id"]: r for r in runs}
    roots = [r for r in runs if not r.get("parent_run_id")]
    assert [r["name"] for r in roots] == ["attention_moa"]
    assert all(r.get("session_name") == "moa-test" for r in roots)

    layers = sorted(
        (r for r in runs if r.get("name", "").startswith("layer_")),
        key=lambda r: r["name"],
    )
    assert [r["name"] for r in layers] == ["layer_1", "layer_2"]
    assert [meta(r)["moa_layer"] for r in layers] == [1, 2]

    def layer_of(run) -> str | None:
        while run.get("parent_run_id"):
            run = by_id[run["parent_run_id"]]
            if run.get("name", "").startswith("layer_"):
                return run["name"]
        return None

    llm = [r for r in runs if r.get("run_type") == "llm"]
    assert len(llm) == result["usage"]["total"]["calls"] == 16 + 18
    roles = Counter((meta(r)["moa_layer"], meta(r)["moa_role"]) for r in llm)
    assert roles[(1, "cross_attention")] == 6 and roles[(2, "residual")] == 1
    for run in llm:
        info = meta(run)
        assert layer_of(run) == f"layer_{info['moa_layer']}"
        assert info["moa_agent"] in {"a", "b", "c", "aggregator"}
        assert ("moa_target" in info) == (info["moa_role"] == "cross_attention")
    targets = sorted(
        (meta(r)["moa_agent"], meta(r)["moa_target"])
        for r in llm
        if meta(r)["moa_role"] == "cross_attention" and meta(r)["moa_layer"] == 1
    )
    assert targets == [(x, y) for x in "abc" for y in "abc" if x != y]

    sent = b"".join(body for _, _, body in raw)
    headers = " ".join(str(h) for _, h, _ in raw)
    assert result["final_answer"].encode() in sent  # the search sees the payloads
    assert PLANTED.encode() not in sent and PLANTED not in headers
