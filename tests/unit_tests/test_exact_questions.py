"""The quality-per-cost questions: computed answers, a fixed split, a strict scorer."""

from __future__ import annotations

import calendar
import re

from benchmarks.exact_questions import Question, questions, right, split
from benchmarks.quality_cost import loops, wilson


def test_the_set_has_over_200_questions_the_same_for_one_seed_and_split_in_halves():
    items = questions()
    assert len(items) >= 200
    assert len({item.id for item in items}) == len(items)
    assert [q.question for q in questions()] == [q.question for q in items]
    assert {item.kind for item in items} == {"arithmetic", "units", "dates", "capitals"}
    tune, report = split(items)
    assert len(tune) == len(report) == len(items) // 2
    assert not {q.id for q in tune} & {q.id for q in report}


def test_computed_answers_are_what_the_question_asks():
    for item in questions():
        if item.kind == "arithmetic":
            a, sign, b = re.match(
                r"What is (\d+) (\+|-|times) (\d+)\?", item.question
            ).groups()
            value = {
                "+": int(a) + int(b),
                "-": int(a) - int(b),
                "times": int(a) * int(b),
            }
            assert item.answers == (str(value[sign]),)
        elif item.kind == "dates" and item.question.startswith("How many days"):
            month, year = re.search(r"in (\w+) (\d{4})", item.question).groups()
            days = calendar.monthrange(
                int(year), list(calendar.month_name).index(month)
            )
            assert item.answers == (str(days[1]),)
    capitals = {q.question: q.answers for q in questions() if q.kind == "capitals"}
    assert capitals["What is the capital of France?"] == ("Paris",)
    assert "Bogota" in capitals["What is the capital of Colombia?"]


def test_a_reply_is_right_only_when_it_says_the_answer_and_nothing_else():
    sum_ = Question("q", "arithmetic", "What is 12 + 30?", ("42",))
    assert right(sum_, "The answer is 42.")
    assert right(sum_, "12 + 30 = 42")
    assert not right(sum_, "142")
    assert not right(sum_, "It is 42 or 43.")
    day = Question(
        "d",
        "dates",
        "If today is Monday, what day will it be in 3 days?",
        ("Thursday",),
    )
    assert right(day, "It will be Thursday.")
    assert not right(day, "Thursday or Friday")
    city = Question(
        "c", "capitals", "What is the capital of Colombia?", ("Bogotá", "Bogota")
    )
    assert right(city, "bogota")
    assert not right(city, "Medellín")


def test_intervals_and_the_loop_check():
    low, high = wilson(10, 100)
    assert 0.05 < low < 0.1 < high < 0.18
    assert wilson(0, 0) == (0.0, 0.0)
    assert loops("The answer is 8. The answer is 8. The answer is 8.")
    assert not loops("The answer is 8. It is 8. Eight.")


def test_the_cli_local_defaults_are_the_adaptive_setting_the_benchmark_measures():
    from attention_moa_graph.cli.ensemble import LOCAL_DEFAULTS
    from benchmarks.quality_cost import ADAPTIVE, CAPS, SAMPLING

    assert {name: LOCAL_DEFAULTS[name] for name in ADAPTIVE} == ADAPTIVE
    assert LOCAL_DEFAULTS["max_tokens"] == SAMPLING["max_tokens"]
    caps = LOCAL_DEFAULTS["role_max_tokens"]
    assert caps == {role: CAPS[role] for role in caps}
