"""MT-Bench: prompt choice per category and turn, rating extraction, means."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from attention_moa_graph.evaluation import mt_bench


@pytest.fixture(scope="module")
def bench(mt_bench_data: Path) -> mt_bench.MTBench:
    return mt_bench.load_mt_bench(mt_bench_data)


def test_loads_80_questions_10_per_category_with_30_references(bench) -> None:
    assert len(bench.questions) == 80
    counts = {
        c: sum(q.category == c for q in bench.questions) for c in mt_bench.CATEGORIES
    }
    assert set(counts.values()) == {10}
    needing = {
        q.question_id for q in bench.questions if q.category in mt_bench.NEEDS_REFERENCE
    }
    assert needing == set(bench.references) and len(needing) == 30


def test_every_turn_gets_fastchats_prompt_with_every_placeholder_filled(bench) -> None:
    answers = ("first {answer} with {braces}", "second answer")
    seen = set()
    for question in bench.questions:
        for turn in (1, 2):
            name, messages = bench.judge_messages(question, answers, turn)
            seen.add(name)
            reference = question.category in mt_bench.NEEDS_REFERENCE
            expected = ("single-math-v1" if reference else "single-v1") + (
                "-multi-turn" if turn == 2 else ""
            )
            assert name == expected
            assert [m["role"] for m in messages] == ["system", "user"]
            user = messages[1]["content"]
            assert answers[0] in user  # braces in answers are values, not fields
            assert question.turns[0] in user
            if turn == 2:
                assert answers[1] in user and question.turns[1] in user
            if reference:
                ref = bench.references[question.question_id]
                assert ref[0] in user
                if turn == 2:
                    assert ref[1] in user
            leftover = re.findall(
                r"\{(question|answer|ref_answer)[_0-9]*\}", user.replace(answers[0], "")
            )
            assert leftover == []
    assert seen == {
        "single-v1",
        "single-math-v1",
        "single-v1-multi-turn",
        "single-math-v1-multi-turn",
    }


@pytest.mark.parametrize(
    ("judgment", "rating"),
    [
        ("The answer is fine. Rating: [[8]]", 8.0),
        ("[[7.5]]", 7.5),
        ("rating [6]", 6.0),
        ("no score at all", -1.0),
        ("[[3]] at first, then [[9]]", 3.0),
        ("[5] then [[9]]", 9.0),  # the double-bracket form wins over an earlier [x]
        ("Rating: [[99999]]", -1.0),  # off the 1-10 scale: no rating
        ("Rating: [[0]]", -1.0),
    ],
)
def test_rating_extraction(judgment: str, rating: float) -> None:
    assert mt_bench.parse_rating(judgment) == rating


def test_failed_ratings_are_dropped_and_counted() -> None:
    rows = [
        {"question_id": 81, "turn": 1, "score": 8, "category": "writing"},
        {"question_id": 81, "turn": 2, "score": 6, "category": "writing"},
        {"question_id": 111, "turn": 1, "score": -1, "category": "math"},
        {"question_id": 111, "turn": 2, "score": 4},
    ]
    scores = mt_bench.aggregate(rows, {111: "math"})
    assert scores["n_failed"] == 1 and scores["n_scored"] == 3
    assert scores["score"] == pytest.approx(6.0)
    assert scores["turn_1"] == 8.0 and scores["turn_2"] == 5.0
    assert scores["by_category"] == {"writing": 7.0, "math": 4.0}


def test_fastchat_temperatures_per_category(bench) -> None:
    by_category = {q.category: q.temperature for q in bench.questions}
    assert by_category == {
        "writing": 0.7,
        "roleplay": 0.7,
        "reasoning": 0.0,
        "math": 0.0,
        "coding": 0.0,
        "extraction": 0.0,
        "stem": 0.1,
        "humanities": 0.1,
    }


def test_ratings_off_the_scale_fail_and_scores_stay_valid_json(tmp_path) -> None:
    import json

    from attention_moa_graph.evaluation.datafiles import write_json

    rows = [
        {"question_id": 81, "turn": 1, "score": 99999, "category": "writing"},
        {"question_id": 81, "turn": 2, "score": -1, "category": "writing"},
    ]
    scores = mt_bench.aggregate(rows)
    assert scores["n_failed"] == 2 and scores["n_scored"] == 0
    write_json(tmp_path / "scores.json", scores)
    text = (tmp_path / "scores.json").read_text()
    assert "NaN" not in text
    assert json.loads(text)["score"] is None


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        ([], "holds no questions"),
        (
            [
                {"question_id": 81, "category": "writing", "turns": ["a", "b"]},
                {"question_id": 81, "category": "math", "turns": ["c", "d"]},
            ],
            "question 81 appears twice",
        ),
        ([{"question_id": 81, "turns": ["a", "b"]}], "needs a whole-number"),
    ],
)
def test_question_files_that_would_misattribute_answers_are_refused(
    mt_bench_data: Path, tmp_path: Path, rows, says
) -> None:
    import json
    import shutil

    shutil.copytree(mt_bench_data, tmp_path / "mt_bench")
    questions = tmp_path / "mt_bench" / "question.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(mt_bench.BenchmarkDataError, match=says):
        mt_bench.load_mt_bench(tmp_path / "mt_bench")


@pytest.mark.parametrize(
    ("name", "row", "says"),
    [
        (
            "judge_prompts.jsonl",
            {"type": "single", "system_prompt": "s", "prompt_template": "t"},
            "judge prompt 1 has no name",
        ),
        ("reference_answer/gpt-4.jsonl", {"question_id": 111}, "record 1 needs"),
    ],
)
def test_judge_prompts_and_references_without_their_fields_are_refused(
    mt_bench_data: Path, tmp_path: Path, name: str, row: dict, says: str
) -> None:
    import json
    import shutil

    shutil.copytree(mt_bench_data, tmp_path / "mt_bench")
    (tmp_path / "mt_bench" / name).write_text(json.dumps(row) + "\n")
    with pytest.raises(mt_bench.BenchmarkDataError, match=says):
        mt_bench.load_mt_bench(tmp_path / "mt_bench")
