"""AlpacaEval 2.0: the scorer reproduces the leaderboard from real annotations."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from attention_moa_graph.evaluation import alpaca_eval
from attention_moa_graph.evaluation.datafiles import BenchmarkDataError

SUFFIX = "_weighted_alpaca_eval_gpt4_turbo_annotations.json"
FIXTURES = {name: name + SUFFIX for name in ("gpt-3.5-turbo-1106", "claude-2.1")}


def leaderboard_row(data: Path, name: str) -> dict[str, str]:
    path = data / "weighted_alpaca_eval_gpt4_turbo_leaderboard.csv"
    with path.open() as handle:
        rows = {row[""]: row for row in csv.DictReader(handle)}
    return rows[name]


def test_scorer_reproduces_the_documented_gpt35_figures(alpaca_data: Path) -> None:
    rows = alpaca_eval.load_annotations(
        alpaca_data / "fixtures" / FIXTURES["gpt-3.5-turbo-1106"]
    )
    scores = alpaca_eval.score_annotations(rows)
    # The file stores preferences to 10 decimals; the leaderboard was computed
    # before that rounding, so the mean may differ in the last binary digits.
    assert scores["win_rate"] == pytest.approx(9.177964561962735, rel=1e-13)
    assert scores["standard_error"] == pytest.approx(0.8904117511864436, rel=1e-13)
    assert (scores["n_wins"], scores["n_wins_base"], scores["n_draws"]) == (64, 737, 4)
    assert scores["n_total"] == 805
    assert scores["discrete_win_rate"] == 8.198757763975156
    assert scores["avg_length"] == 796
    assert scores["length_controlled_winrate"] is None
    assert "df_gamed.csv" in scores["length_controlled_note"]


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_scorer_matches_the_leaderboard_row(alpaca_data: Path, name: str) -> None:
    rows = alpaca_eval.load_annotations(alpaca_data / "fixtures" / FIXTURES[name])
    scores = alpaca_eval.score_annotations(rows)
    expected = leaderboard_row(alpaca_data, name)
    for key in ("win_rate", "standard_error", "discrete_win_rate"):
        assert scores[key] == pytest.approx(float(expected[key]), rel=1e-13), key
    for key in ("n_wins", "n_wins_base", "n_draws", "n_total", "avg_length"):
        assert scores[key] == int(expected[key]), key


def test_switch_rule_and_logprob_parser_recompute_every_judged_row(
    alpaca_data: Path,
) -> None:
    rows = alpaca_eval.load_annotations(
        alpaca_data / "fixtures" / FIXTURES["gpt-3.5-turbo-1106"]
    )
    judged = identical = switched = 0
    for row in rows:
        if row["output_1"] == row["output_2"]:
            identical += 1
            assert row["preference"] == 1.5
            continue
        flip = alpaca_eval.is_switched(row["instruction"])
        switched += flip
        top = alpaca_eval.top_logprobs_of(row["raw_completion"])
        preference = alpaca_eval.preference_from_logprobs(top, flip)
        assert abs(preference - row["preference"]) < 1e-6
        judged += 1
    assert (judged, identical) == (801, 4)
    assert (
        switched
        + sum(
            alpaca_eval.is_switched(r["instruction"])
            for r in rows
            if r["output_1"] == r["output_2"]
        )
        == 406
    )


def test_406_of_805_instructions_are_switched(alpaca_data: Path) -> None:
    items = alpaca_eval.load_eval_set(alpaca_data)
    assert len(items) == 805
    assert sum(alpaca_eval.is_switched(item["instruction"]) for item in items) == 406
    datasets: dict[str, int] = {}
    for item in items:
        datasets[item["dataset"]] = datasets.get(item["dataset"], 0) + 1
    assert datasets == {
        "selfinstruct": 252,
        "oasst": 188,
        "koala": 156,
        "helpful_base": 129,
        "vicuna": 80,
    }
    assert {item["generator"] for item in items} == {"gpt4_1106_preview"}


def test_preference_parser_edge_cases() -> None:
    assert alpaca_eval.preference_from_logprobs({"M": 0.0}, False) == 2.0
    assert alpaca_eval.preference_from_logprobs({"M": 0.0}, True) == 1.0
    assert alpaca_eval.preference_from_logprobs({"m": -0.1, "M": -0.1}, False) == 1.5
    assert math.isnan(alpaca_eval.preference_from_logprobs({"The": 0.0}, False))
    assert math.isnan(alpaca_eval.preference_from_logprobs(None, False))
    # Very unlikely tokens must not underflow to 0/0.
    assert (
        alpaca_eval.preference_from_logprobs({"m": -900.0, "M": -1000.0}, False) == 1.0
    )


def test_nan_rows_are_dropped_but_exact_draws_are_counted() -> None:
    scores = alpaca_eval.win_rate([2.0, 1.0, 1.5, math.nan, None, 0])
    assert scores["n_total"] == 4  # NaN and None dropped; legacy 0 is a draw
    assert scores["n_draws"] == 2
    assert scores["win_rate"] == 50.0
    assert scores["discrete_win_rate"] == 50.0
    assert scores["avg_length"] is None


def test_judge_prompt_renders_into_system_and_user(alpaca_data: Path) -> None:
    template = alpaca_eval.load_judge_template(alpaca_data)
    messages = template.render("Say {output_1} twice", "first answer", "second answer")
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    # The instruction's literal placeholder text is kept, not substituted.
    assert '"""Say {output_1} twice"""' in user
    assert '"""first answer"""' in user and '"""second answer"""' in user
    assert user.index("first answer") < user.index("second answer")
    assert "{instruction}" not in user and "{output_2}" not in user
    again = template.render("Say {output_1} twice", "first answer", "second answer")
    assert again == messages


def test_missing_files_say_where_to_look(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match="alpaca_eval_clf.txt"):
        alpaca_eval.load_judge_template(tmp_path)
    (tmp_path / "model_outputs.json").write_text(json.dumps({"not": "a list"}))
    with pytest.raises(BenchmarkDataError, match="JSON array"):
        alpaca_eval.load_eval_set(tmp_path)
    bad = tmp_path / "annotations.json"
    bad.write_text(json.dumps([{"instruction": "x"}]))
    with pytest.raises(BenchmarkDataError, match="preference"):
        alpaca_eval.load_annotations(bad)


def test_annotations_with_a_bad_preference_or_a_repeated_row_name_the_file(
    tmp_path: Path,
) -> None:
    row = {"instruction": "x", "generator_2": "m", "preference": 2.0}
    path = tmp_path / "annotations.json"
    path.write_text(
        json.dumps([row, {**row, "instruction": "y", "preference": "garbage"}])
    )
    with pytest.raises(
        BenchmarkDataError, match=r"annotations.json: row 1: preference 'garbage'"
    ):
        alpaca_eval.load_annotations(path)
    path.write_text(json.dumps([row, {**row, "preference": 1.0}]))
    with pytest.raises(
        BenchmarkDataError, match="rows 0 and 1 annotate the same instruction"
    ):
        alpaca_eval.load_annotations(path)
    path.write_text(json.dumps([row, {**row, "instruction": "y", "preference": None}]))
    assert (
        alpaca_eval.score_annotations(alpaca_eval.load_annotations(path))["n_total"]
        == 1
    )


def test_a_repeated_or_empty_eval_set_is_refused(tmp_path: Path) -> None:
    row = {"instruction": "Name a colour.", "output": "Red."}
    (tmp_path / "model_outputs.json").write_text(json.dumps([row, {**row}]))
    with pytest.raises(BenchmarkDataError, match="entry 1 repeats an earlier"):
        alpaca_eval.load_eval_set(tmp_path)
    (tmp_path / "model_outputs.json").write_text("[]")
    with pytest.raises(BenchmarkDataError, match="JSON array of outputs"):
        alpaca_eval.load_eval_set(tmp_path)
