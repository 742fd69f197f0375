"""The local runtime's failure paths, each a clear message (no model needed)."""

from __future__ import annotations

import stat
import sys

import pytest

from attention_moa_graph.local.runtime import LocalRuntimeError, Runtime


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


def test_a_server_built_for_another_cpu_is_reported_as_such(tmp_path):
    from attention_moa_graph.local.server import LlamaServer, ServerSettings

    # A stand-in binary that dies as a build for another CPU does: SIGILL.
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\nkill -ILL $$\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"")
    runtime = Runtime(str(binary), "", "a test binary", str(model))
    with pytest.raises(LocalRuntimeError, match="illegal instruction.*--build"):
        LlamaServer(runtime, model, ServerSettings()).start()
