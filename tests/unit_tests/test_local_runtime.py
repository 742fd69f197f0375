"""The local runtime's failure paths, each a clear message (no model needed)."""

from __future__ import annotations

import sys
from pathlib import Path

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


STAND_IN_BUILD = """
import sys, time
from pathlib import Path
from attention_moa_graph.local import build

def compile_server(target, say):  # the real one takes minutes
    time.sleep(1.5)
    with open(sys.argv[1], "a") as builds:
        builds.write("built\\n")
    binary = target / "llama-server"
    binary.write_text("#!/bin/sh\\n")
    return binary

build.compile_server = compile_server
print(build.build_server(Path("model.gguf"), print).server, flush=True)
"""


def test_two_installs_at_once_build_the_server_once(tmp_path):
    import os
    import subprocess

    builds = tmp_path / "builds.txt"
    env = {**os.environ, "HOME": str(tmp_path)}
    installs = [
        subprocess.Popen(
            [sys.executable, "-c", STAND_IN_BUILD, str(builds)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [install.communicate(timeout=60) for install in installs]
    assert [i.returncode for i in installs] == [0, 0], outputs
    assert builds.read_text() == "built\n"  # one build for both
    servers = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert len(servers) == 1 and Path(servers.pop()).is_file()
    said = "".join(out for out, _ in outputs)
    assert "waiting for it" in said and "using the llama-server built in" in said


def test_a_build_says_how_long_it_has_run(tmp_path, monkeypatch):
    from attention_moa_graph.local import build

    log = tmp_path / "build.log"
    log.write_text("[ 12%] Building C object\n[ 57%] Building CXX object\n")
    monkeypatch.setattr(build, "PROGRESS_SECONDS", 0.05)
    said: list[str] = []
    with build.progress(said.append, "building llama-server", log):
        import time

        time.sleep(0.3)
    assert any(line.endswith("elapsed, 57% of the steps") for line in said), said
    assert said[-1].startswith("building llama-server: done in 0:00")


def test_check_says_what_would_run_and_why(tmp_path, monkeypatch):
    from attention_moa_graph.local import build, install

    monkeypatch.setattr(sys, "prefix", str(tmp_path))  # nothing recorded here
    monkeypatch.setattr(install, "cpu_flags", lambda: {"avx2", "avx512f"})
    monkeypatch.setattr(build, "build_cache", lambda: tmp_path / "cache")
    monkeypatch.setattr(install, "build_cache", lambda: tmp_path / "cache")
    lines = install.check()
    assert any(line.startswith("server: none recorded") for line in lines)
    assert "avx_vnni no" in " ".join(lines)
    assert lines[-1].startswith("would: build llama-server")
    assert "the CPU lacks avx_vnni" in lines[-1]
    monkeypatch.setattr(install, "cpu_flags", lambda: {"avx2", "avx512f", "avx_vnni"})
    assert install.check()[-1].startswith("would: install the prebuilt")


def test_install_says_where_the_server_came_from_once(monkeypatch, capsys):
    from types import SimpleNamespace

    from attention_moa_graph.cli import main
    from attention_moa_graph.local import install as installing

    def install(*, build, force, say):
        say("installed: llama-server built here from llama.cpp b1234")
        return SimpleNamespace(source="llama-server built here from llama.cpp b1234")

    monkeypatch.setattr(installing, "install", install)
    assert main(["local", "install"]) == 0
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("built here from llama.cpp b1234") == 1
