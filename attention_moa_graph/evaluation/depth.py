"""The depth study: the score the ensemble would get had it stopped at layer k.

Every answered turn records each layer's output (`TurnRecord.layer_outputs`).
For layer k the turn's answer is replaced by that layer's output, or by the
last output when the run stopped earlier (what a user would have received),
and the result is written as an ordinary run under `out/depth/layer-<k>/`, so
the benchmark's own judging and scoring apply unchanged. For MT-Bench the
second turn was generated after the final first answer, so a depth run
measures each layer's answers on the conversation that really took place.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from attention_moa_graph.evaluation.datafiles import BenchmarkDataError, write_json
from attention_moa_graph.evaluation.generation import (
    RUN_FILE,
    ItemRecord,
    TurnRecord,
)

DEPTH_DIR = "depth"


def layer_count(records: Mapping[str, ItemRecord]) -> int:
    """The deepest layer any turn reached; refuses runs without layer outputs."""
    deepest = max(
        (len(turn["layer_outputs"]) for r in records.values() for turn in r["turns"]),
        default=0,
    )
    if deepest == 0:
        raise BenchmarkDataError(
            "--depth needs layer outputs, which only attention-moa runs record; "
            "this run has none (was it generated with --system moa, self-moa or "
            "single?)."
        )
    return deepest


def at_layer(records: Mapping[str, ItemRecord], layer: int) -> dict[str, ItemRecord]:
    """The records with each turn's answer taken from `layer` (1-based)."""
    if layer < 1:
        raise ValueError(f"layers count from 1, got {layer}.")

    def answer(turn: TurnRecord) -> str:
        outputs = turn["layer_outputs"]
        return outputs[min(layer, len(outputs)) - 1] if outputs else turn["answer"]

    return {
        key: {
            **record,
            "turns": [{**turn, "answer": answer(turn)} for turn in record["turns"]],
        }
        for key, record in records.items()
    }


def same_answers(a: Mapping[str, ItemRecord], b: Mapping[str, ItemRecord]) -> bool:
    """True when both hold the same items with the same answers, turn by turn."""
    return a.keys() == b.keys() and all(
        [t["answer"] for t in a[k]["turns"]] == [t["answer"] for t in b[k]["turns"]]
        for k in a
    )


def layer_directory(out: Path, layer: int, run: Mapping[str, object]) -> Path:
    """`out/depth/layer-<k>/`, holding a copy of the run's description."""
    directory = out / DEPTH_DIR / f"layer-{layer}"
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / RUN_FILE, {**run, "depth_layer": layer})
    return directory
