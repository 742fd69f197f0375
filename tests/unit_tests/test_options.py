"""Every option is declared once and reaches every surface derived from it.

The surfaces: the factory's keywords, the command line, the run context (for
options a run may override), the chat model and the evaluation systems.
"""

from __future__ import annotations

import argparse
import ast
import json
import typing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import RetryPolicy

from attention_moa_graph import (
    DEFAULT_PROMPTS,
    AttentionMoAChatModel,
    CallPolicy,
    MoAContext,
    MoAOptions,
    MoAOptionsDict,
    MoAPrompts,
    create_attention_moa,
)
from attention_moa_graph._core.config import build_config
from attention_moa_graph._core.state import RunSettings
from attention_moa_graph.cli.ensemble import ensemble_options
from attention_moa_graph.cli.flags import options_from
from attention_moa_graph.evaluation.systems import SystemSpec
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import fake_agents

pytestmark = pytest.mark.anyio
PACKAGE = Path(__file__).resolve().parents[2] / "attention_moa_graph"
SETTINGS = MoAOptions.settings()
NAMES = [s.name for s in SETTINGS]
TWO = ("demo:a", "demo:b")


def cli_words(setting: Any, tmp_path) -> list[str]:
    """The command-line words that set `setting` to its example."""
    flag, example = setting.knob.flag, setting.knob.example
    if flag.negate:
        return [flag.names[-1]]
    if isinstance(example, RetryPolicy):
        return [flag.names[-1], str(example.max_attempts)]
    if isinstance(example, MoAPrompts):
        path = tmp_path / "prompts.json"
        path.write_text(json.dumps({"summary": example.summary}))
        return [flag.names[-1], str(path)]
    if isinstance(example, dict):
        return [
            w
            for k, values in example.items()
            for v in (values if isinstance(values, tuple) else (values,))
            # A stop sequence is typed with \n for its newline.
            for w in (flag.names[-1], f"{k}={v}".replace("\n", "\\n"))
        ]
    return [flag.names[-1], str(example)]


def test_every_option_declares_a_valid_example_other_than_its_default():
    assert NAMES == sorted(set(NAMES), key=NAMES.index)  # unique
    for setting in SETTINGS:
        example = setting.knob.example
        assert example != setting.default, setting.name
        assert setting.knob.check(example, setting.name) == example
        assert setting.knob.doc.strip(), setting.name


@pytest.mark.parametrize("name", NAMES)
def test_each_option_reaches_the_factory_by_keyword(name):
    example = MoAOptions.setting(name).knob.example
    graph = create_attention_moa(
        fake_agents(["a", "b", "c"]), aggregator="demo:chair", **{name: example}
    )
    assert graph.name == "attention_moa"
    # ... and the options object the factory builds from them.
    assert MoAOptions().replace(**{name: example}).get(name) == example


@pytest.mark.parametrize("name", NAMES)
def test_each_option_reaches_the_command_line(name, tmp_path):
    setting = MoAOptions.setting(name)
    parser = argparse.ArgumentParser(parents=[ensemble_options()])
    args = parser.parse_args(cli_words(setting, tmp_path))
    assert options_from(args).get(name) == setting.knob.example
    # Flags not given leave every other option at its default.
    assert set(options_from(args).changed()) == {name}


@pytest.mark.parametrize("name", NAMES)
def test_each_option_reaches_the_chat_model(name):
    example = MoAOptions.setting(name).knob.example
    model = AttentionMoAChatModel(
        proposers=list(TWO), aggregator="demo:chair", **{name: example}
    )
    assert model.options.get(name) == example


@pytest.mark.parametrize("name", NAMES)
def test_each_option_reaches_the_evaluation_systems(name):
    setting = MoAOptions.setting(name)
    options = MoAOptions().replace(**{name: setting.knob.example})
    spec = SystemSpec("attention-moa", TWO, options=options)
    spec.build()
    described = name in spec.describe()
    assert described == setting.knob.answers
    plain = SystemSpec("attention-moa", TWO)
    assert (spec.fingerprint() != plain.fingerprint()) == setting.knob.answers
    # The baselines take the options they declare, and refuse the others.
    if setting.knob.baselines:
        SystemSpec("single", TWO, options=options).build()
    elif name != "max_layers":  # classic MoA's layer count
        with pytest.raises(ValueError, match="attention-moa only"):
            SystemSpec("single", TWO, options=options)


RUN_OPTIONS = [s.name for s in SETTINGS if s.knob.run is not None]


def run_value(settings: dict, name: str) -> Any:
    """Where a run's settings hold the option `name`."""
    if name == "temperature":
        return settings["params"]["draft"]["temperature"]
    if name == "temperatures":
        return {"summary": settings["params"]["summary"]["temperature"]}
    if name == "max_tokens":
        return settings["params"]["draft"]["max_tokens"]
    if name == "repeat_penalty":
        return settings["params"]["draft"]["repeat_penalty"]
    if name == "role_max_tokens":
        return {"cross_attention": settings["params"]["cross_attention"]["max_tokens"]}
    return settings["options"][name]


def test_exactly_the_run_options_are_in_the_context_schema():
    context_fields = set(MoAContext.__dataclass_fields__)
    lineup = {"proposer_models", "aggregator_model", "tools", "tool_choice"}
    lineup |= {"response_format"}
    assert context_fields == {*lineup, *RUN_OPTIONS}
    schema = create_attention_moa(list(TWO), aggregator="demo:c")
    properties = schema.get_context_jsonschema()["properties"]
    assert set(properties) == context_fields
    assert all(p.get("description") for p in properties.values())


@pytest.mark.parametrize("name", RUN_OPTIONS)
def test_each_run_option_reaches_a_run_through_its_context(name):
    example = MoAOptions.setting(name).knob.example
    config = build_config(
        list(TWO), aggregator="demo:c", residual_model=None, options=MoAOptions()
    )
    for context in (MoAContext(**{name: example}), {name: example}):
        assert run_value(config.for_run(context), name) == example


def test_the_typed_views_spell_exactly_the_declared_options():
    # The factory's keywords: every option, and each group whole.
    keywords = typing.get_type_hints(MoAOptionsDict)
    assert keywords == {
        **{s.name: s.kind for s in SETTINGS},
        **MoAOptions.groups(),
    }
    # The run context: the lineup, then each run option as optional, documented.
    context = typing.get_type_hints(MoAContext)
    for name in RUN_OPTIONS:
        setting = MoAOptions.setting(name)
        assert context[name] == typing.Optional[setting.kind], name  # noqa: UP045
        described = MoAContext.__dataclass_fields__[name].metadata["description"]
        assert described.startswith(setting.knob.doc), name
    # A run's settings hold the options by the keywords' type, none by hand.
    run = typing.get_type_hints(RunSettings)
    assert run["options"] is MoAOptionsDict
    assert not set(run) & set(NAMES)


def test_no_other_class_lists_the_options_by_hand():
    """An option is spelled in at most three package files: its declaration, the
    keywords' TypedDict and (if a run may set it) the context. A class naming
    four or more options would be a fourth copy to keep in step."""
    views = {"MoAOptionsDict", "MoAContext"}
    spelled: dict[str, set[str]] = {name: set() for name in NAMES}
    copies = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            fields = [
                item.target.id
                for item in node.body
                if isinstance(item, ast.AnnAssign)
                and isinstance(item.target, ast.Name)
                and item.target.id in spelled
            ]
            declared = [
                item.target.id
                for item in node.body
                if isinstance(item, ast.AnnAssign)
                and isinstance(item.target, ast.Name)
                and isinstance(item.value, ast.Call)
                and getattr(item.value.func, "id", None) == "option"
            ]
            for name in declared if node.name not in views else fields:
                spelled[name].add(path.name)
            if len(fields) >= 4 and node.name not in views and not declared:
                copies.append(f"{path.name}:{node.name}")
    assert copies == []
    assert {n: len(files) for n, files in spelled.items() if len(files) > 3} == {}
    assert all(spelled.values())


def test_an_unknown_option_names_the_nearest_one():
    with pytest.raises(TypeError, match="did you mean `max_layers`"):
        create_attention_moa(list(TWO), aggregator="demo:c", max_layer=2)
    with pytest.raises(TypeError, match="did you mean `hedge_after`"):
        MoAOptions().replace(hedge_afer=1.0)


def test_options_objects_and_keywords_combine():
    base = MoAOptions(max_layers=2, calls=CallPolicy(call_timeout=30))
    graph = create_attention_moa(
        list(TWO), aggregator="demo:c", options=base, max_tokens=64
    )
    assert len(graph.invoke({"messages": [("user", "hi")]})["layers"]) == 2
    assert base.replace(max_tokens=64).changed() == {
        "max_layers": 2,
        "call_timeout": 30.0,
        "max_tokens": 64,
    }
    with pytest.raises(ValueError, match="`calls` must be a CallPolicy"):
        MoAOptions(calls={"call_timeout": 1})  # type: ignore[arg-type]


async def test_max_tokens_reaches_every_call_and_a_run_can_change_it(call_log):
    graph = create_attention_moa(
        fake_agents(["a", "b"]),
        aggregator=ScriptedChatModel(model_name="agg"),
        max_layers=2,
        max_tokens=300,
    )
    question = {"messages": [("user", "hi")]}

    def caps() -> dict[str, set[int]]:
        found: dict[str, set[int]] = {}
        for call in call_log.calls:
            verdict = call["moa_role"] == "verdict"
            found.setdefault("verdict" if verdict else "rest", set()).add(
                call.get("max_tokens")
            )
        call_log.calls.clear()
        return found

    await graph.ainvoke(question, {"callbacks": [call_log]})
    # A verdict keeps its own small cap (a few tokens of JSON).
    assert caps() == {"rest": {300}, "verdict": {32}}
    await graph.ainvoke(question, {"callbacks": [call_log]}, context={"max_tokens": 9})
    assert caps() == {"rest": {9}, "verdict": {32}}


async def test_the_chat_model_takes_run_options_per_call(call_log):
    model = AttentionMoAChatModel(
        proposers=fake_agents(["a", "b"]),
        aggregator=ScriptedChatModel(model_name="agg"),
        max_layers=1,
        temperature=0.7,
    )
    await model.ainvoke("hi", {"callbacks": [call_log]}, max_tokens=11)
    inner = [c for c in call_log.calls if c.get("moa_role")]
    assert {(c["temperature"], c["max_tokens"]) for c in inner} == {(0.7, 11)}
    texts = [c.content for c in model.bind(temperature=0.1).stream("hi")]
    assert "".join(texts)
    assert model._get_ls_params(max_tokens=11)["ls_max_tokens"] == 11
    with pytest.raises(ValueError, match="cannot change per call"):
        model.invoke("hi", call_timeout=5)


def test_langchain_standard_parameters_map_onto_the_options():
    model = AttentionMoAChatModel(
        proposers=list(TWO), aggregator="demo:c", timeout=7, max_retries=4
    )
    assert model.options.calls.call_timeout == 7.0
    assert model.options.calls.retry_policy.max_attempts == 5
    prompts = replace(DEFAULT_PROMPTS, summary="Merge.\n\n{responses}")
    assert (
        AttentionMoAChatModel(
            proposers=list(TWO), aggregator="demo:c", prompts=prompts
        ).options.prompts
        is prompts
    )


def test_the_command_line_rejects_bad_values_before_running(capsys):
    parser = argparse.ArgumentParser(parents=[ensemble_options()])
    for words in (["--retries", "-5"], ["--layers", "two"], ["--prompts", "/nope"]):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(words)
        assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--retries counts attempts" in err and "cannot use prompts" in err


def test_the_readme_table_is_the_one_the_declarations_give():
    from scripts.readme_table import current, expected

    # Refresh with `make docs` after changing an option.
    assert current() == expected()
    for name in NAMES:
        assert f"| `{name}`" in current()


async def test_a_parameter_a_model_cannot_take_fails_before_any_call():
    agents = fake_agents(["a", "b"])
    graph = create_attention_moa(agents, aggregator="demo:c", repeat_penalty=1.1)
    with pytest.raises(ValueError, match="repeat_penalty.*OpenAI-protocol"):
        await graph.ainvoke({"messages": [("user", "hi")]})
    assert all(not p.model.calls for p in agents)


@pytest.mark.slow
def test_mypy_rejects_misspelled_and_mistyped_options(tmp_path):
    import re
    import subprocess
    import sys

    example = PACKAGE.parent / "tests" / "typecheck" / "options_example.py"
    marked = example.read_text(encoding="utf-8")
    bare = re.sub(r"  # type: ignore\[[a-z-]+\]$", "", marked, flags=re.M)
    assert bare != marked
    probe = tmp_path / "probe.py"
    probe.write_text(bare, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(probe)],
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert len(errors) == marked.count("# type: ignore["), done.stdout
    assert any('"max_layer"' in e and 'did you mean "max_layers"' in e for e in errors)
