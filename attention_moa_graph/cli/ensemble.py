"""The options that choose the models and shape the ensemble (ask and serve)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph
from pydantic import SecretStr

from attention_moa_graph._calls.models import ModelLike, Proposer
from attention_moa_graph._core.graph import DEFAULT_RETRY_POLICY, create_attention_moa

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
    """Options that choose the models and shape the ensemble (ask and serve)."""
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
        "-l", "--layers", type=int, default=3, help="maximum layers (default: 3)"
    )
    for flag, dest, text in (
        ("--no-early-stopping", "early_stopping", "always run every layer"),
        ("--no-cross-attention", "cross_attention", "ablation: no peer critiques"),
        ("--no-self-attention", "self_attention", "ablation: no self-critiques"),
        ("--no-residual", "residual", "ablation: the answer is the last summary"),
    ):
        group.add_argument(flag, dest=dest, action="store_false", help=text)
    group.add_argument("-t", "--temperature", type=float, help="sampling temperature")
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
    group.add_argument(
        "--call-timeout",
        type=float,
        default=120.0,
        help="seconds a model call may take (default: 120)",
    )
    group.add_argument(
        "--hedge-after",
        type=float,
        help="straggler policy: resend a call unanswered after this many seconds "
        "and take the first reply (off by default; slow calls cost twice)",
    )
    group.add_argument(
        "--critique-deadline",
        type=float,
        help="straggler policy: seconds a critique may take before its target "
        "refines without it (off by default; departs from the paper)",
    )
    group.add_argument(
        "--stage-deadline",
        type=float,
        help="straggler policy: seconds a draft, critique or refinement may take; "
        "a late draft keeps its agent out of the layer, a late refinement leaves "
        "the draft to the summary (off by default; departs from the paper)",
    )
    group.add_argument(
        "--critique-mode",
        choices=("pairwise", "batched"),
        default="pairwise",
        help="pairwise: one call per critic and target, as in the paper (default); "
        "batched: one call per critic covering all its targets",
    )
    group.add_argument(
        "--max-concurrent-calls",
        type=int,
        help="at most this many model calls in flight at once (default: no cap)",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRY_POLICY.max_attempts,
        help="attempts per model call on transient failures (default: 3)",
    )
    group.add_argument(
        "--min-agents",
        type=int,
        default=1,
        help="fewest agents a layer may continue with after failures (default: 1)",
    )
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
        api_key=SecretStr(os.environ.get(key_env) or "not-needed"),
        stream_usage=True,
        timeout=120,
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
        max_layers=args.layers,
        early_stopping=args.early_stopping,
        cross_attention=args.cross_attention,
        self_attention=args.self_attention,
        residual=args.residual,
        temperature=args.temperature,
        call_timeout=args.call_timeout,
        hedge_after=args.hedge_after,
        critique_deadline=args.critique_deadline,
        stage_deadline=args.stage_deadline,
        max_concurrent_calls=args.max_concurrent_calls,
        critique_mode=args.critique_mode,
        retry_policy=DEFAULT_RETRY_POLICY._replace(max_attempts=max(1, args.retries)),
        min_agents=args.min_agents,
        checkpointer=checkpointer,
        name=name,
    )
