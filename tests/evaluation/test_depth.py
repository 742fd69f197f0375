"""The depth study's view of a run: each turn's answer as of layer k."""

from __future__ import annotations

import pytest

from attention_moa_graph.evaluation.datafiles import BenchmarkDataError
from attention_moa_graph.evaluation.depth import at_layer, layer_count, same_answers
from attention_moa_graph.evaluation.generation import ItemRecord, TurnRecord


def turn(answer: str, outputs: list[str]) -> TurnRecord:
    return TurnRecord(
        answer=answer, layer_outputs=outputs, calls=1, input_tokens=2, output_tokens=3
    )


def item(key: str, *turns: TurnRecord) -> ItemRecord:
    return ItemRecord(
        id=key,
        turns=list(turns),
        calls=1,
        input_tokens=2,
        output_tokens=3,
        wall_seconds=0.5,
    )


RECORDS = {
    "1": item("1", turn("c", ["a", "b", "c"]), turn("z", ["x", "y", "z"])),
    "2": item("2", turn("q", ["p", "q"])),  # stopped after layer 2
}


def test_each_layer_takes_that_layers_output_or_the_last_one_reached() -> None:
    assert layer_count(RECORDS) == 3
    answers = {
        layer: {
            key: [t["answer"] for t in record["turns"]]
            for key, record in at_layer(RECORDS, layer).items()
        }
        for layer in (1, 2, 3)
    }
    assert answers == {
        1: {"1": ["a", "x"], "2": ["p"]},
        2: {"1": ["b", "y"], "2": ["q"]},
        3: {"1": ["c", "z"], "2": ["q"]},
    }
    # Everything else is kept, and the records given are not changed.
    assert at_layer(RECORDS, 1)["1"]["turns"][0]["layer_outputs"] == ["a", "b", "c"]
    assert RECORDS["1"]["turns"][0]["answer"] == "c"


def test_same_answers_compares_every_turn() -> None:
    assert same_answers(at_layer(RECORDS, 3), RECORDS)
    assert not same_answers(at_layer(RECORDS, 2), RECORDS)
    assert not same_answers({"1": RECORDS["1"]}, RECORDS)


def test_runs_without_layer_outputs_and_layer_zero_are_refused() -> None:
    with pytest.raises(BenchmarkDataError, match="only attention-moa runs"):
        layer_count({"1": item("1", turn("a", []))})
    with pytest.raises(ValueError, match="count from 1"):
        at_layer(RECORDS, 0)
