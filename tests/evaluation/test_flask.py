"""FLASK on made-up data of the same shape: digests, prompt, parse, means."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attention_moa_graph.evaluation import flask
from attention_moa_graph.evaluation.datafiles import BenchmarkDataError, sha256_of

SKILL_NAMES = [
    "Logical Robustness",
    "Logical Correctness",
    "Logical Efficiency",
    "Commonsense Understanding",
    "Factuality",
    "Metacognition",
    "Insightfulness",
    "Completeness",
    "Comprehension",
    "Conciseness",
    "Readability",
    "Harmlessness",
]


def make_checkout(root: Path) -> Path:
    """A fake FLASK checkout: three instances, twelve rubrics, two prompts."""
    instances = [
        {
            "idx": 1,
            "instruction": "Add 2 and 3.",
            "answer": "5",
            "task": "Toy",
            "skill": ["Logical Correctness", "Conciseness"],
            "domain": ["Math"],
            "difficulty": "simple lifestyle knowledge",
        },
        # The upstream record 259 stores its id and lists as strings.
        {
            "idx": "259",
            "instruction": "Name a prime.",
            "answer": "7",
            "task": "Toy",
            "skill": "['Factuality', 'Readability', 'Commonsense Understanding']",
            "domain": "['Math', 'Language']",
            "difficulty": "formal education knowledge",
        },
        {
            "idx": 3,
            "instruction": "Write a haiku.",
            "answer": "...",
            "task": "Toy",
            "skill": ["Insightfulness", "Readability", "Harmlessness"],
            "domain": ["Language"],
            "difficulty": -1,
        },
    ]
    rubrics = [
        {
            "Skill": name,
            "Criteria": f"Is the response good at {name.lower()}?",
            "Scoring": {str(n): f"{name} level {n}" for n in range(1, 6)},
        }
        for name in SKILL_NAMES
    ]
    prompts = [
        {
            "prompt_id": 1,
            "system_prompt": "unused",
            "prompt_template": "{question}",
            "defaults": {},
            "description": "no reference",
        },
        {
            "prompt_id": 2,
            "system_prompt": "You check answers.",
            "prompt_template": "{prompt1}\n\n{skills}\n\n[Instruction]\n{question}\n\n"
            "[Ground truth Answer]\n{sample_answer}\n\n"
            "[Assistant's Response]\n{response}\n"
            "[The End of Assistant's Response]\n\n{prompt2}",
            "defaults": {
                "prompt1": "Rate the response.",
                "prompt2": "End with a dict.",
            },
            "description": "with reference",
        },
    ]
    files = {
        "evaluation_set/flask_evaluation.jsonl": "\n".join(
            json.dumps(i) for i in instances
        ),
        "evaluation_set/flask_hard_evaluation.jsonl": json.dumps(instances[0]),
        "metadata_annotation/skillset/src/skillset_description.json": json.dumps(
            rubrics
        ),
        "gpt_review/src/prompt.jsonl": "\n".join(json.dumps(p) for p in prompts),
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    return root


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return make_checkout(tmp_path / "FLASK")


def test_a_copy_that_differs_from_the_pinned_version_is_refused(checkout: Path) -> None:
    with pytest.raises(BenchmarkDataError, match="sha256.*--no-verify"):
        flask.load_flask(checkout)


def test_digests_are_checked_per_file(checkout: Path, monkeypatch) -> None:
    pinned = {
        key: (relative, sha256_of(checkout / relative))
        for key, (relative, _) in flask.FILES.items()
    }
    monkeypatch.setattr(flask, "FILES", pinned)
    assert len(flask.load_flask(checkout).instances) == 3
    (checkout / "gpt_review/src/prompt.jsonl").write_text("{}\n")
    with pytest.raises(BenchmarkDataError, match="FLASK prompts"):
        flask.load_flask(checkout)


def test_missing_checkout_explains_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(
        BenchmarkDataError, match="git clone https://github.com/kaistAI/FLASK"
    ):
        flask.load_flask(tmp_path)


def test_loader_normalises_string_encoded_records(checkout: Path) -> None:
    data = flask.load_flask(checkout, verify=False)
    odd = next(i for i in data.instances if i.idx == 259)
    assert odd.skills == ("Factuality", "Readability", "Commonsense Understanding")
    assert odd.domains == ("Math", "Language")
    assert len(flask.load_flask(checkout, subset="hard", verify=False).instances) == 1


def test_prompt_shows_exactly_the_instances_skills_and_the_reference(
    checkout: Path,
) -> None:
    data = flask.load_flask(checkout, verify=False)
    instance = data.instances[0]
    system, user = data.judge_messages(instance, "It is 5.")
    assert system == {"role": "system", "content": "You check answers."}
    text = user["content"]
    for name in SKILL_NAMES:
        shown = f"{name}: Is the response" in text
        assert shown == (name in instance.skills), name
    for name in instance.skills:
        for n in range(1, 6):
            assert f"Score {n}: {name} level {n}" in text
    assert "[Ground truth Answer]\n5" in text and "It is 5." in text
    assert text.startswith("Rate the response.") and text.endswith("End with a dict.")


def test_review_parse_takes_the_last_dict_and_normalises_keys() -> None:
    review = (
        "Feedback first {'not': 'this one'}\n"
        "{'logical_correctness': 4, 'Readability': 5, 'conciseness': 'N/A'}"
    )
    assert flask.parse_review(review) == {
        "logical correctness": 4,
        "readability": 5,
        "conciseness": "N/A",
    }
    assert flask.parse_review("{'factuality': 'not applicable'}") == {
        "factuality": "N/A"
    }
    assert flask.parse_review("no dict here") == {}
    assert flask.parse_review("{'broken': }") == {}


def test_aggregation_excludes_na_and_groups_by_difficulty_and_domain(
    checkout: Path,
) -> None:
    data = flask.load_flask(checkout, verify=False)
    first, odd, haiku = data.instances
    reviews = [
        flask.review_record(first, "{'logical correctness': 4, 'conciseness': 'N/A'}"),
        flask.review_record(
            odd, "{'factuality': 2, 'readability': 5, 'commonsense understanding': 3}"
        ),
        flask.review_record(haiku, "no scores"),
    ]
    scores = flask.aggregate(reviews)
    assert scores["n_reviews"] == 3 and scores["n_unparsed"] == 1
    assert list(scores["by_skill"]) == [
        "correctness",
        "factuality",
        "commonsense",
        "readability",
    ]
    assert scores["by_skill"]["correctness"] == {"mean": 4.0, "count": 1}
    assert "conciseness" not in scores["by_skill"]
    assert (
        scores["by_difficulty"]["formal education knowledge"]["readability"]["mean"]
        == 5.0
    )
    assert scores["by_domain"]["Math"]["factuality"] == {"mean": 2.0, "count": 1}
    assert scores["by_domain"]["Language"]["commonsense"]["count"] == 1
    assert flask.skill_key("logical robustness") == "robustness"
    assert flask.skill_key("commonsense understanding") == "commonsense"


@pytest.mark.parametrize(
    ("relative", "text", "says"),
    [
        ("evaluation_set/flask_evaluation.jsonl", "", "holds no FLASK instances"),
        (
            "evaluation_set/flask_evaluation.jsonl",
            '{"idx": 4, "instruction": "a"}\n{"idx": "4", "instruction": "b"}\n',
            "instance 4 appears twice",
        ),
        ("gpt_review/src/prompt.jsonl", "", "no judge prompt"),
        (
            "metadata_annotation/skillset/src/skillset_description.json",
            '[{"Skill": "Factuality"}]',
            "every rubric needs",
        ),
    ],
)
def test_files_that_would_misattribute_or_crash_are_refused(
    checkout: Path, relative: str, text: str, says: str
) -> None:
    (checkout / relative).write_text(text)
    with pytest.raises(BenchmarkDataError, match=says):
        flask.load_flask(checkout, verify=False)


def test_scores_off_the_scale_are_left_out_and_a_record_needs_its_instruction(
    checkout: Path,
) -> None:
    data = flask.load_flask(checkout, verify=False)
    first, odd, haiku = data.instances
    reviews = [
        flask.review_record(first, "{'logical correctness': 99999, 'factuality': 4}"),
        flask.review_record(odd, "{'factuality': 1e999}"),
        flask.review_record(haiku, "{'factuality': 0, 'readability': -3}"),
    ]
    scores = flask.aggregate(reviews)
    assert scores["by_skill"] == {"factuality": {"mean": 4.0, "count": 1}}
    assert scores["n_reviews"] == 3 and scores["n_unparsed"] == 2
    with pytest.raises(BenchmarkDataError, match="FLASK record 7 has no instruction"):
        flask.normalise({"idx": 7, "skill": "['factuality']"})
