"""The drawn topology, pinned per build option (refresh: `make snapshots`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from attention_moa_graph import create_attention_moa

OPTIONS = {
    "default": {},
    "one_layer_has_no_residual_node": {"max_layers": 1},
    "no_cross_attention": {"cross_attention": False},
    "no_self_attention": {"self_attention": False},
    "plain_moa": {"cross_attention": False, "self_attention": False},
    "no_residual": {"residual": False},
}


@pytest.mark.parametrize("option", OPTIONS)
def test_graph_drawing(option, snapshot):
    graph = create_attention_moa(
        ["demo:a", "demo:b", "demo:c"], aggregator="demo:chair", **OPTIONS[option]
    )
    drawing = graph.get_graph(xray=True).draw_mermaid(with_styles=False)
    assert drawing == snapshot


def test_layers_are_one_subgraph_looped_by_a_conditional_edge():
    graph = create_attention_moa(["demo:a", "demo:b"], aggregator="demo:chair")
    outer = graph.get_graph()
    assert set(outer.nodes) == {"__start__", "prepare", "layer", "finish", "__end__"}
    loops = {(e.source, e.target, e.conditional) for e in outer.edges}
    assert ("layer", "layer", True) in loops and ("layer", "finish", True) in loops
    inner = set(graph.get_graph(xray=True).nodes)
    for stage in (
        "draft",
        "cross_attention",
        "self_attention",
        "refine",
        "summarize",
        "residual",
    ):
        assert f"layer:{stage}" in inner


def test_the_readme_shows_the_graphs_own_drawing():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    drawn = (
        create_attention_moa(["demo:a", "demo:b", "demo:c"], aggregator="demo:chair")
        .get_graph(xray=True)
        .draw_mermaid()
    )
    block = readme.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block.strip() == drawn.strip()
