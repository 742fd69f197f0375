"""The local runtime's failure paths, each a clear message (no model needed)."""

from __future__ import annotations

import sys

import pytest


def test_a_local_model_without_the_runtime_names_the_install_command(
    monkeypatch, tmp_path
):
    from attention_moa_graph import create_attention_moa

    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    graph = create_attention_moa(
        ["local:smollm2@1", "local:smollm2@2"], aggregator="local:smollm2"
    )
    with pytest.raises(ValueError, match="attention-moa local install"):
        graph.invoke({"messages": [("user", "hi")]})


def test_a_bad_seed_is_refused():
    from attention_moa_graph.local.provider import parse_name

    assert parse_name("smollm2@3") == ("smollm2", 3)
    assert parse_name("smollm2") == ("smollm2", None)
    with pytest.raises(ValueError, match="seed"):
        parse_name("smollm2@x")
