"""Does the early stop fire when it should, with a real (local) model deciding?

Two layers run with scripted proposers and a scripted summary writer, so each
case controls what round 1 and round 2 say; the residual agent, which makes
the stop decision, is the local model (`local:smollm2`). Five converged cases
(round 2 repeats round 1) and five improved ones (round 1 wrong or empty,
round 2 right). The package stops converged rounds itself and asks the
model's verdict otherwise; the model's verdict on the converged pairs, asked
with the same prompt, is reported beside it to show what the model alone does.

Needs `attention-moa local install`. Run: `python -m benchmarks.stop_decision`.
"""

from __future__ import annotations

import argparse

from langchain_core.messages import BaseMessage, HumanMessage

from attention_moa_graph import create_attention_moa
from attention_moa_graph._calls.models import json_reply_params
from attention_moa_graph._core.messages import build_verdict_messages
from attention_moa_graph._core.prompts import DEFAULT_PROMPTS
from attention_moa_graph._core.stop import VERDICT_SCHEMA, parse_verdict
from attention_moa_graph.local import leave_servers, local_model
from attention_moa_graph.testing import ScriptedChatModel
from benchmarks.common import record

# (question, the right answer, a wrong or empty one)
CASES = [
    (
        "What is the capital of France?",
        "The capital of France is Paris.",
        "I am not sure.",
    ),
    (
        "How many legs does a spider have?",
        "A spider has eight legs.",
        "Spiders have six legs, like insects.",
    ),
    ("What is 12 times 12?", "12 times 12 is 144.", "12 times 12 is 124."),
    (
        "What gas do plants take in from the air to make sugar?",
        "Plants take in carbon dioxide from the air.",
        "I cannot answer that.",
    ),
    (
        "Who wrote Romeo and Juliet?",
        "William Shakespeare wrote Romeo and Juliet.",
        "It was written by Charles Dickens.",
    ),
]


def rounds_writer(first: str, second: str) -> ScriptedChatModel:
    """A summary writer whose layer-1 summary is `first` and layer-2 `second`."""

    def reply(messages: list[BaseMessage]) -> str:
        text = "\n".join(str(m.text) for m in messages)
        # A layer-2 draft prompt carries the previous round as a reference;
        # its summary prompt holds those drafts' answers, which say "[2]".
        return second if "[2]" in text else first

    return ScriptedChatModel(model_name="writer", reply=reply)


def proposer(name: str) -> ScriptedChatModel:
    def reply(messages: list[BaseMessage]) -> str:
        later = any("reference-" in str(m.text) for m in messages)
        return f"{name} answers [{2 if later else 1}]"

    return ScriptedChatModel(model_name=name, reply=reply)


def run_case(question: str, first: str, second: str, judge: str) -> dict[str, object]:
    graph = create_attention_moa(
        [proposer("a"), proposer("b")],
        aggregator=rounds_writer(first, second),
        residual_model=judge,
        max_layers=2,
        cross_attention=False,
        self_attention=False,
    )
    result = graph.invoke({"messages": [("user", question)]})
    layer = result["layers"][1]
    return {
        "stopped": layer["stopped"],
        "converged": layer["converged"],
        "verdict": " ".join(str(layer["verdict"]).split()),
    }


def verdict_alone(question: str, previous: str, latest: str, judge: str) -> bool:
    """The model's own verdict on a pair, asked as the verdict node asks it."""
    model = local_model(judge.partition(":")[2])
    messages = build_verdict_messages(
        DEFAULT_PROMPTS, [HumanMessage(question)], previous, latest, layer=2
    )
    reply = model.invoke(
        messages,
        temperature=0.0,
        max_tokens=32,
        **json_reply_params(model, "verdict", VERDICT_SCHEMA),
    )
    return parse_verdict(str(reply.text)) is False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="local:smollm2")
    args = parser.parse_args()
    rows = []
    stops = {"converged": 0, "improved": 0}
    alone = 0
    try:
        for question, right, wrong in CASES:
            same = run_case(question, right, right, args.model)
            better = run_case(question, wrong, right, args.model)
            said = verdict_alone(question, right, right, args.model)
            stops["converged"] += bool(same["stopped"])
            stops["improved"] += bool(better["stopped"])
            alone += said
            rows.append(
                f"| {question} | {'stop' if same['stopped'] else 'go on'} "
                f"({'converged' if same['converged'] else same['verdict']}) | "
                f"{'stop' if said else 'go on'} | "
                f"{'stop' if better['stopped'] else 'go on'} ({better['verdict']}) |"
            )
    finally:
        leave_servers()
    table = "\n".join(
        [
            f"Judge (the residual agent): `{args.model}`; 2 layers, scripted rounds.",
            "",
            "| question | converged rounds: the package | converged rounds: the "
            "model's verdict alone | improved round: the package (verdict) |",
            "|---|---|---|---|",
            *rows,
            f"| **stops** | **{stops['converged']}/5** | **{alone}/5** | "
            f"**{stops['improved']}/5** |",
        ]
    )
    record(
        "Stop decision with a real model", "python -m benchmarks.stop_decision", table
    )


if __name__ == "__main__":
    main()
