"""Cost: tokens per query by role, and what early stopping saves.

In-process scripted models (tokens counted as words) reply with a fixed
150-word text, so the figures show how the prompts grow with the number of
agents and layers: every critique prompt carries two drafts, every
refinement N suggestions, the residual prompt every earlier layer output.

The early-stopping workload converges: from layer 2 on every agent gives the
same answer, so layer outputs repeat, and the residual agent answers the stop
signal once the last two rounds it is shown are identical. The same queries
run with early stopping on and off.

Run: python -m benchmarks.cost
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from attention_moa_graph import STOP_SIGNAL, Proposer, create_attention_moa
from attention_moa_graph.testing import ScriptedChatModel
from benchmarks.common import record

WORDS = 150
ROLES = ("draft", "cross_attention", "self_attention", "refine", "summary", "residual")


def text_of(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return " ".join(digest[i % 60 : i % 60 + 4] for i in range(WORDS))


def prompt(messages: Sequence[BaseMessage]) -> str:
    return "\n".join(str(m.text) for m in messages)


def varied(name: str):
    """A reply of WORDS words that differs per agent and prompt."""
    return lambda messages: text_of(name + prompt(messages))


def sectioned(name: str):
    """Like `varied`, and a batched critique writes one section per answer."""

    def reply(messages: Sequence[BaseMessage]) -> str:
        text = prompt(messages)
        count = len(re.findall(r"<answer-\d+-[0-9a-f]{12}>", text))
        if count:
            return "\n".join(
                f"[[answer {n}]]\n{text_of(f'{name}{n}{text}')}"
                for n in range(1, count + 1)
            )
        return text_of(name + text)

    return reply


def converging(name: str):
    """Agents agree from layer 2 on, so the rounds repeat and the loop stops."""

    def reply(messages: Sequence[BaseMessage]) -> str:
        text = prompt(messages)
        rounds = re.findall(r"<(round-\d+-[0-9a-f]+)>\n(.*?)\n</\1>", text, re.S)
        if rounds:
            if len(rounds) >= 2 and rounds[-1][1] == rounds[-2][1]:
                return STOP_SIGNAL
            return text_of("synthesis")
        if "<reference-" in text or "<candidate-" in text:
            return text_of("agreed")  # layer 2 on, and every summary
        return text_of(name + text)

    return reply


async def tokens(
    n: int, layers: int, reply: Any, early_stopping: bool, mode: str = "pairwise"
) -> dict:
    graph = create_attention_moa(
        [
            Proposer(
                f"p{i}", ScriptedChatModel(model_name=f"p{i}", reply=reply(f"p{i}"))
            )
            for i in range(n)
        ],
        aggregator=ScriptedChatModel(model_name="agg", reply=reply("agg")),
        max_layers=layers,
        early_stopping=early_stopping,
        critique_mode=mode,
    )
    result = await graph.ainvoke({"messages": [("user", "How do vaccines work?")]})
    return {"usage": result["usage"], "layers": len(result["layers"])}


async def main_async() -> str:
    rows = [
        f"Scripted replies of {WORDS} words (1 word = 1 token); early stopping off.",
        "",
        "| N | layers | calls | input tokens | output tokens | "
        + " | ".join(f"{r} in %" for r in ROLES)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(ROLES),
    ]
    for n in (3, 5):
        for layers in (1, 2, 3):
            usage = (await tokens(n, layers, varied, False))["usage"]
            total = usage["total"]
            shares = [
                100
                * usage["by_role"].get(r, {}).get("input_tokens", 0)
                / total["input_tokens"]
                for r in ROLES
            ]
            rows.append(
                f"| {n} | {layers} | {total['calls']} | {total['input_tokens']:,} | "
                f"{total['output_tokens']:,} | "
                + " | ".join(f"{s:.0f}" for s in shares)
                + " |"
            )
    rows += [
        "",
        'critique_mode="batched" against the paper\'s pairwise critiques (a batched '
        "reply has one 150-word section per answer, as many words as the pairwise "
        "replies together):",
        "",
        "| N | layers | mode | calls | critique calls | input tokens | output tokens |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in (3, 5):
        for mode in ("pairwise", "batched"):
            usage = (await tokens(n, 3, sectioned, False, mode))["usage"]
            total, by = usage["total"], usage["by_role"]
            critique_calls = sum(
                by.get(r, {}).get("calls", 0)
                for r in ("cross_attention", "self_attention", "critique")
            )
            rows.append(
                f"| {n} | 3 | {mode} | {total['calls']} | {critique_calls} | "
                f"{total['input_tokens']:,} | {total['output_tokens']:,} |"
            )
    rows += [
        "",
        "Converging workload, N=3, up to 4 layers:",
        "",
        "| early stopping | layers run | calls | input tokens | output tokens |",
        "|---|---|---|---|---|",
    ]
    runs = {}
    for on in (False, True):
        runs[on] = await tokens(3, 4, converging, on)
        total = runs[on]["usage"]["total"]
        rows.append(
            f"| {'on' if on else 'off'} | {runs[on]['layers']} | {total['calls']} | "
            f"{total['input_tokens']:,} | {total['output_tokens']:,} |"
        )
    off, on_ = runs[False]["usage"]["total"], runs[True]["usage"]["total"]
    saved = 1 - (on_["input_tokens"] + on_["output_tokens"]) / (
        off["input_tokens"] + off["output_tokens"]
    )
    rows += ["", f"Early stopping saves {100 * saved:.0f}% of the tokens here."]
    return "\n".join(rows)


def main() -> None:
    record("Cost by role", "python -m benchmarks.cost", asyncio.run(main_async()))


if __name__ == "__main__":
    main()
