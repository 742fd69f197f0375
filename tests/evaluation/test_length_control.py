"""AlpacaEval's length-controlled win rate, fitted from a user's df_gamed.csv.

The real df_gamed.csv is only on the Hugging Face hub, so these tests build a
stand-in with the same columns from a fixed formula. The expected figures were
computed by the official `alpaca_eval` 0.6.6 package
(`alpaca_eval.metrics.glm_winrate.get_length_controlled_winrate`, with its
hub download pointed at the same stand-in file) on the real annotation
fixtures, with scikit-learn 1.9.1 and numpy 2.4.6; this package must give the
same numbers with its own code.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from attention_moa_graph.evaluation import alpaca_eval
from attention_moa_graph.evaluation.datafiles import BenchmarkDataError
from attention_moa_graph.evaluation.length_control import (
    length_controlled_winrate,
    load_gamed,
)
from tests.helpers import run_eval

SUFFIX = "_weighted_alpaca_eval_gpt4_turbo_annotations.json"
COLUMNS = [
    "model",
    "index",
    "preference",
    "std_delta_len",
    "instruction_difficulty",
    "not_gamed_baseline",
]
# (strength, model) -> (LC win rate, LC standard error) from alpaca_eval 0.6.6.
OFFICIAL = {
    (1.3, "gpt-3.5-turbo-1106"): (25.46518639343956, 0.09660654554768316),
    (1.3, "claude-2.1"): (29.600533841649003, 0.10902657980172348),
    (3.0, "gpt-3.5-turbo-1106"): (38.30344407478416, 0.08711831102831097),
    (3.0, "claude-2.1"): (34.15856183619982, 0.09093063051268886),
}


def write_gamed(path: Path, strength: float) -> Path:
    """A verbose and a concise "gamed baseline", 805 rows each.

    The gamed output's win probability falls with the length term (baseline
    minus gamed length, standardised) by `strength` and with difficulty.
    """
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        for model, sign in (("gpt4_gamed_verbose", -1.0), ("gpt4_gamed_concise", 1.0)):
            for i in range(805):
                difficulty = ((i * 37) % 101) / 50 - 1
                length = sign * (0.5 + ((i * 13) % 7) / 4)
                z = (
                    -strength * math.tanh(length)
                    - 0.6 * difficulty
                    + 0.05 * ((i * 7) % 5 - 2)
                )
                writer.writerow(
                    {
                        "model": model,
                        "index": i,
                        "preference": round(1 / (1 + math.exp(-z)), 6),
                        "std_delta_len": round(length, 6),
                        "instruction_difficulty": round(difficulty, 6),
                        "not_gamed_baseline": False,
                    }
                )
    return path


@pytest.mark.parametrize(("strength", "model"), sorted(OFFICIAL))
def test_lc_matches_the_official_package(
    tmp_path: Path, alpaca_data: Path, strength: float, model: str
) -> None:
    gamed = load_gamed(write_gamed(tmp_path / "df_gamed.csv", strength))
    rows = alpaca_eval.load_annotations(alpaca_data / "fixtures" / (model + SUFFIX))
    scores = alpaca_eval.score_annotations(rows, gamed)
    lc, se = OFFICIAL[(strength, model)]
    # Same scikit-learn and numpy as the reference run: equal to ~1e-14. On
    # other builds the cross-validation may pick another penalty: the CV
    # log-losses of every C >= 2.8 agree to ~1e-6, and which rows share a
    # fold comes from numpy's unstable sort of equal group sizes, which
    # differs between builds. The official tool has the same dependence, and
    # it moves LC by a few hundredths of a point; a wrong fit moves it by
    # points (the fit without the gamed baselines gives 37.8 for 19.3).
    assert scores["length_controlled_winrate"] == pytest.approx(lc, abs=0.05)
    assert scores["lc_standard_error"] == pytest.approx(se, rel=0.1)
    assert scores["length_controlled_note"].startswith("fitted with df_gamed.csv")
    # The weighted win rate is unchanged by the extra fit.
    assert scores["win_rate"] == alpaca_eval.score_annotations(rows)["win_rate"]


def test_the_baseline_against_itself_is_50(tmp_path: Path, alpaca_data: Path) -> None:
    gamed = load_gamed(write_gamed(tmp_path / "df_gamed.csv", 1.3))
    rows = [
        {
            "output_1": row["output"],
            "generator_1": "gpt4_1106_preview",
            "output_2": row["output"],
            "generator_2": "gpt4_1106_preview",
            "preference": 1.5,
        }
        for row in alpaca_eval.load_eval_set(alpaca_data)
    ]
    assert length_controlled_winrate(rows, gamed)["length_controlled_winrate"] == 50


def test_a_subset_is_flagged_as_not_leaderboard_comparable(
    tmp_path: Path, alpaca_data: Path
) -> None:
    gamed = load_gamed(write_gamed(tmp_path / "df_gamed.csv", 1.3))
    rows = alpaca_eval.load_annotations(
        alpaca_data / "fixtures" / ("claude-2.1" + SUFFIX)
    )[:200]
    result = length_controlled_winrate(rows, gamed)
    assert 0 < result["length_controlled_winrate"] < 100
    assert "200 of 805 instructions" in result["length_controlled_note"]


def test_bad_gamed_files_and_mixed_models_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match="tatsu-lab/alpaca_eval"):
        load_gamed(tmp_path / "missing.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("model,index,preference\nx,0,0.5\n")
    with pytest.raises(BenchmarkDataError, match="lacks the columns std_delta_len"):
        load_gamed(wrong)
    scale = tmp_path / "scale.csv"
    scale.write_text(",".join(COLUMNS) + "\nx,0,1.7,0.5,0.1,False\n")
    with pytest.raises(BenchmarkDataError, match=r"outside \[0, 1\]"):
        load_gamed(scale)
    gamed = load_gamed(write_gamed(tmp_path / "df_gamed.csv", 1.3))
    rows = [
        {"output_1": "a", "output_2": "bb", "generator_1": "b", "generator_2": g}
        for g in ("x", "y")
    ]
    with pytest.raises(BenchmarkDataError, match="mix several models"):
        length_controlled_winrate(rows, gamed)


@pytest.mark.slow
def test_score_command_prints_lc_with_df_gamed(
    tmp_path: Path, alpaca_data: Path
) -> None:
    gamed = write_gamed(tmp_path / "df_gamed.csv", 3.0)
    done = run_eval(
        "alpaca-eval",
        "score",
        str(alpaca_data / "fixtures" / ("claude-2.1" + SUFFIX)),
        "--df-gamed",
        str(gamed),
    )
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    assert scores["length_controlled_winrate"] == pytest.approx(
        OFFICIAL[(3.0, "claude-2.1")][0], abs=0.05
    )
    assert scores["win_rate"] == 15.733506736409938
