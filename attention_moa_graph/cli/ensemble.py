"""The options that choose the models and shape the ensemble (ask and serve)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph
from pydantic import SecretStr

from attention_moa_graph._calls.models import ModelLike, Proposer
from attention_moa_graph._core.graph import create_attention_moa
from attention_moa_graph._core.options import MoAOptions

DEMO_PREFIX = "demo:"
DEMO_NOTICE = (
    "Using offline demo models: their replies only trace the ensemble's steps. "
    "For real answers pass models such as --proposer openai:gpt-4.1-mini (needs "
    "OPENAI_API_KEY), or any OpenAI-compatible server (vLLM, Ollama) with "
    "--base-url http://127.0.0.1:8000/v1."
)
DEFAULT_DEMO_PROPOSERS = ("demo:alpha", "demo:beta", "demo:gamma")
DEFAULT_DEMO_AGGREGATOR = "demo:chair"


def ensemble_options() -> argparse.ArgumentParser:
    """Options that choose the models and shape the ensemble (ask, serve, eval).

    The models are the command line's own; every other flag comes from the
    declarations of `MoAOptions` (see `add_option_flags`).
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
        "each agent (default: three demo models)",
    )
    group.add_argument(
        "-a",
        "--aggregator",
        metavar="MODEL",
        help="the summary and residual agent (default: the first proposer's model, "
        "or a demo model)",
    )
    group.add_argument(
        "--residual-model", metavar="MODEL", help="a different residual agent"
    )
    group.add_argument(
        "--base-url",
        help="an OpenAI-compatible endpoint (vLLM, Ollama, ...); model names are "
        "then sent to it as given",
    )
    group.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the key for --base-url "
        "(default: OPENAI_API_KEY; local servers usually need none)",
    )
    add_option_flags(options.add_argument_group("ensemble options"))
    return options


def add_option_flags(group: Any) -> None:
    """One flag per option of `MoAOptions`, as its knob declares it.

    Flags not given are left out of the parsed arguments (`SUPPRESS`), so
    `options_from` leaves those options at their defaults.
    """
    for setting in MoAOptions.settings():
        knob, flag = setting.knob, setting.knob.flag
        text = knob.doc.replace("%", "%%").replace("`", "")
        if flag.negate:
            group.add_argument(
                *flag.names,
                dest=setting.name,
                action="store_const",
                const=False,
                default=argparse.SUPPRESS,
                help=f"switch off {setting.name} (on by default): {text}",
            )
            continue
        group.add_argument(
            *flag.names,
            dest=setting.name,
            type=flag.parse,
            metavar=flag.metavar,
            action="append" if flag.repeat else "store",
            default=argparse.SUPPRESS,
            help=f"{text} (default: {setting.default_text})",
        )


def options_from(args: argparse.Namespace) -> MoAOptions:
    """The options the command line set; the others keep their defaults."""
    chosen: dict[str, Any] = {}
    for setting in MoAOptions.settings():
        if hasattr(args, setting.name):
            value = getattr(args, setting.name)
            repeat = setting.knob.flag.repeat
            chosen[setting.name] = repeat(value) if repeat else value
    return MoAOptions.build(where="the command line", **chosen)


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
        api_key=SecretStr(os.environ.get(key_env) or "not-needed"),
        stream_usage=True,
    )


def model_from(spec: str, args: argparse.Namespace) -> ModelLike:
    """A model spec from the command line, through --base-url when given."""
    if args.base_url and not spec.startswith(DEMO_PREFIX):
        return _openai_compatible(spec, args.base_url, args.api_key_env)
    return spec


def agents_from(args: argparse.Namespace) -> tuple[list[Proposer], ModelLike, bool]:
    """The proposers, the aggregator, and whether demo models are in use."""
    specs = list(args.proposer) or list(DEFAULT_DEMO_PROPOSERS)
    proposers: list[Proposer] = []
    for index, value in enumerate(specs):
        name, spec = _split_named(value)
        if name is None:
            name = (
                spec[len(DEMO_PREFIX) :]
                if spec.startswith(DEMO_PREFIX)
                else f"proposer_{index}"
            )
        proposers.append(Proposer(name=name, model=model_from(spec, args)))
    aggregator_spec = args.aggregator or (
        _split_named(specs[0])[1] if args.proposer else DEFAULT_DEMO_AGGREGATOR
    )
    every_spec = [_split_named(s)[1] for s in specs] + [aggregator_spec]
    if args.residual_model:
        every_spec.append(args.residual_model)
    demo = any(s.startswith(DEMO_PREFIX) for s in every_spec)
    return proposers, model_from(aggregator_spec, args), demo


def build_graph(
    args: argparse.Namespace,
    proposers: list[Proposer],
    aggregator: ModelLike,
    checkpointer: Any = None,
    name: str = "attention_moa",
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph the ensemble options describe."""
    return create_attention_moa(
        proposers,
        aggregator=aggregator,
        residual_model=model_from(args.residual_model, args)
        if args.residual_model
        else None,
        options=options_from(args),
        checkpointer=checkpointer,
        name=name,
    )
