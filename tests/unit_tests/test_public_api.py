"""The public surface: exact exports, no side effects at import, Studio's entry."""

from __future__ import annotations

import json
import os
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from langgraph.graph.state import CompiledStateGraph

import attention_moa_graph
from attention_moa_graph import Proposer
from tests.helpers import run_python

ROOT = Path(__file__).resolve().parents[2]


def test_all_lists_exactly_the_public_names_sorted():
    assert attention_moa_graph.__all__ == sorted(attention_moa_graph.__all__)
    assert set(attention_moa_graph.__all__) == {
        "AgentFailedError",
        "AgentsExhaustedError",
        "AggregatorFailedError",
        "AttentionMoAChatModel",
        "CallPolicy",
        "CostEstimate",
        "DEFAULT_PROMPTS",
        "DEFAULT_RETRY_POLICY",
        "LayerRecord",
        "MoAError",
        "MoAContext",
        "MoAInput",
        "MoAInputError",
        "MoAOptions",
        "MoAOptionsDict",
        "MoAOutput",
        "MoAPrompts",
        "MoAState",
        "ModelLike",
        "Proposer",
        "STOP_SIGNAL",
        "Sampling",
        "StreamEvent",
        "UsageReport",
        "__version__",
        "astream_answer",
        "create_attention_moa",
        "estimate_cost",
        "is_stop_signal",
    }
    for name in attention_moa_graph.__all__:
        assert hasattr(attention_moa_graph, name)
    assert set(dir(attention_moa_graph)) >= set(attention_moa_graph.__all__)
    with pytest.raises(AttributeError, match="no attribute 'create_attention'"):
        attention_moa_graph.create_attention  # noqa: B018


def test_public_classes_and_functions_name_the_package_as_their_module():
    import inspect
    import pickle

    from attention_moa_graph import AgentsExhaustedError, MoAError, transport

    for name in attention_moa_graph.__all__:
        value = getattr(attention_moa_graph, name)
        if isinstance(value, type) or inspect.isfunction(value):
            assert value.__module__ == "attention_moa_graph", name
    # So a traceback shows the public path, and a pickle loads from it.
    assert repr(MoAError) == "<class 'attention_moa_graph.MoAError'>"
    assert pickle.loads(pickle.dumps(MoAError("x"))).args == ("x",)
    assert AgentsExhaustedError.__module__ == "attention_moa_graph"
    assert transport.__all__ == ["async_http_client"]
    assert transport.async_http_client.__module__ == "attention_moa_graph.transport"


def test_importing_the_package_loads_nothing_until_a_name_is_used():
    code = (
        "import sys, attention_moa_graph as m;"
        "print(sorted(k for k in sys.modules if k.startswith('attention_moa_graph')));"
        "m.create_attention_moa;"
        "print('attention_moa_graph._core.graph' in sys.modules)"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["['attention_moa_graph']", "True"]


def test_proposer_is_a_frozen_dataclass():
    proposer = Proposer(name="a", model="demo:a")
    with pytest.raises(FrozenInstanceError):
        proposer.name = "b"  # type: ignore[misc]
    assert Proposer("a", "demo:a") == proposer


def test_importing_needs_no_keys_and_does_not_build_the_studio_graph():
    code = (
        "import sys, attention_moa_graph;"
        "assert 'attention_moa_graph.adapters.studio' not in sys.modules;"
        "import attention_moa_graph.adapters.studio as s;"
        "from langgraph.graph.state import CompiledStateGraph as C;"
        "print(isinstance(s.graph, C))"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    done = run_python(code, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


def test_langgraph_json_points_at_a_compiled_graph():
    config = json.loads((ROOT / "langgraph.json").read_text())
    target = config["graphs"]["attention_moa"]
    path, _, attribute = target.partition(":")
    module = path.removeprefix("./").removesuffix(".py").replace("/", ".")
    graph = getattr(__import__(module, fromlist=[attribute]), attribute)
    assert isinstance(graph, CompiledStateGraph)
    assert graph.name == "attention_moa"


def test_studio_graph_reads_its_models_from_the_environment(monkeypatch):
    import importlib

    import attention_moa_graph.adapters.studio as studio

    monkeypatch.setenv("ATTENTION_MOA_PROPOSERS", "demo:x, demo:y ,demo:z,demo:w")
    monkeypatch.setenv("ATTENTION_MOA_MAX_LAYERS", "1")
    try:
        reloaded = importlib.reload(studio)
        result = reloaded.graph.invoke({"messages": [("user", "hi")]})
        assert sorted(result["layers"][0]["drafts"]) == [
            "proposer_0",
            "proposer_1",
            "proposer_2",
            "proposer_3",
        ]
        assert len(result["layers"]) == 1
    finally:
        monkeypatch.undo()
        importlib.reload(studio)


def test_input_and_output_schemas_show_only_the_public_keys():
    from attention_moa_graph.adapters.studio import graph

    assert list(graph.get_input_jsonschema()["properties"]) == ["messages"]
    assert set(graph.get_output_jsonschema()["properties"]) == {
        "messages",
        "final_answer",
        "stop_reason",
        "layers",
        "usage",
    }
    context = graph.get_context_jsonschema()
    assert context is not None
    assert "max_layers" in context["properties"]
    assert context["properties"]["max_layers"].get("description")


@pytest.mark.parametrize("old", ["baselines", "fake_server", "streaming", "studio"])
def test_unreleased_module_paths_are_gone(old):
    # Each had a public home elsewhere before any release; only those remain.
    with pytest.raises(ModuleNotFoundError):
        __import__(f"attention_moa_graph.{old}")


def test_production_code_never_imports_the_test_doubles():
    import ast

    package = ROOT / "attention_moa_graph"
    importers = set()
    for path in package.rglob("*.py"):
        relative = path.relative_to(package).as_posix()
        if relative.startswith("testing/"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(n.startswith("attention_moa_graph.testing") for n in names):
                importers.add(relative)
    assert importers == set()


def test_demo_and_local_models_reach_the_resolver_through_entry_points():
    from importlib.metadata import entry_points

    found = {
        e.name: e.value for e in entry_points(group="attention_moa_graph.providers")
    }
    assert found == {
        "demo": "attention_moa_graph.testing.demo:demo_model",
        "local": "attention_moa_graph.local:local_model",
    }


def test_imports_run_one_way_through_the_layers():
    import ast

    package = ROOT / "attention_moa_graph"
    # A layer may import those below it, never those above.
    above = {
        "_knobs": {"_calls", "_core", "adapters", "evaluation", "cli", "testing"},
        "_calls": {"_core", "adapters", "evaluation", "cli", "testing", "local"},
        "_core": {"adapters", "evaluation", "cli", "testing", "local"},
        "adapters": {"evaluation", "cli", "testing", "local"},
        "local": {"_core", "adapters", "evaluation", "cli", "testing"},
    }
    wrong = []
    for layer, forbidden in above.items():
        paths = [package / "_knobs.py"] if layer == "_knobs" else []
        paths += list((package / layer).rglob("*.py")) if layer != "_knobs" else []
        for path in paths:
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    parts = node.module.split(".")
                    if parts[0] == "attention_moa_graph" and len(parts) > 1:
                        if parts[1] in forbidden:
                            wrong.append((path.name, node.module))
    assert wrong == []


def test_every_benchmark_and_script_imports():
    # They run by hand, not in the suite: an import broken by a change to the
    # package shows here instead of at the next benchmark run.
    import importlib

    for folder in ("benchmarks", "scripts"):
        for path in sorted((ROOT / folder).glob("*.py")):
            if path.stem != "__init__":
                importlib.import_module(f"{folder}.{path.stem}")
