"""FLASK: a user-supplied copy of the data, the rubric judge prompt, parse and means.

FLASK's data has no licence, so nothing of it ships here: the user points at
a checkout of kaistAI/FLASK and the loader checks each file against the
digest of the pinned upstream version. Each instance is scored 1-5 on its
own two or three skills; the judge ends its review with a Python dict.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing_extensions import TypedDict

from attention_moa_graph.evaluation.datafiles import (
    BenchmarkDataError,
    check_digest,
    find_file,
    read_json,
    read_jsonl,
)

DEFAULT_JUDGE = "openai:gpt-4-0613"
JUDGE_KWARGS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 1024}
"""Passed explicitly: the upstream script meant these but never sent them."""
SKILLS = (
    "robustness",
    "correctness",
    "efficiency",
    "factuality",
    "commonsense",
    "comprehension",
    "insightfulness",
    "completeness",
    "metacognition",
    "readability",
    "conciseness",
    "harmlessness",
)
"""The 12 reported skills, in FLASK's order."""
UPSTREAM_COMMIT = "3b4e22bc34aa9dc15ea0c51be3cbf5f3c8b1b5e5"
FILES: dict[str, tuple[str, str]] = {
    "full": (
        "evaluation_set/flask_evaluation.jsonl",
        "791950bf1f159b048eba8fee205eba606926c25467a9a31e6f9b6affc2e3e13d",
    ),
    "hard": (
        "evaluation_set/flask_hard_evaluation.jsonl",
        "9830d65b2a137b9184039850c748f52dde369377a0ae06c00ccb6d464d5ebb48",
    ),
    "rubrics": (
        "metadata_annotation/skillset/src/skillset_description.json",
        "78f03c29f5a6510b76b8a765cb539c302d69898b7e4d7c68372c9cc2427e595e",
    ),
    "prompts": (
        "gpt_review/src/prompt.jsonl",
        "64836bb1eb6940e7ddbbbf0ea66265191bfd49476036ca15fc2660bbfa326134",
    ),
}
"""Upstream path and sha256 of each file used, at `UPSTREAM_COMMIT`."""

_HINT = (
    "FLASK cannot be shipped; get it with `git clone "
    "https://github.com/kaistAI/FLASK && git -C FLASK checkout "
    f"{UPSTREAM_COMMIT}` and pass --data FLASK."
)


@dataclass(frozen=True)
class Instance:
    """One FLASK instance, normalised to the current field names."""

    idx: int
    instruction: str
    answer: str
    skills: tuple[str, ...]
    domains: tuple[str, ...]
    difficulty: str


@dataclass(frozen=True)
class Rubric:
    """One skill's criteria and its five score descriptions."""

    skill: str
    criteria: str
    scoring: tuple[str, str, str, str, str]


def _as_list(value: Any) -> list[str]:
    # One upstream record stores its lists as the text of a Python list.
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return [value]
        value = parsed if isinstance(parsed, list) else [value]
    if not isinstance(value, list):
        return [str(value)]
    return [str(item) for item in value]


def normalise(record: Mapping[str, Any]) -> Instance:
    """Map a record of any FLASK version onto `Instance`."""
    try:
        idx = int(record.get("idx", record.get("question_id")))
    except (TypeError, ValueError) as exc:
        raise BenchmarkDataError(
            f"FLASK record without an id: {record!r:.200}"
        ) from exc
    instruction = record.get("instruction", record.get("text"))
    if not isinstance(instruction, str) or not instruction.strip():
        raise BenchmarkDataError(
            f"FLASK record {idx} has no instruction (an `instruction` or `text` "
            "field with the question); fix or drop the record."
        )
    skills = _as_list(record.get("skill", record.get("metrics", [])))
    domains = _as_list(record.get("domain", record.get("domain_labeled", [])))
    difficulty = record.get("difficulty", record.get("difficulty_labeled", "unknown"))
    return Instance(
        idx=idx,
        instruction=instruction,
        answer=str(record.get("answer", "")),
        skills=tuple(skills),
        domains=tuple(domains),
        difficulty=str(difficulty),
    )


@dataclass(frozen=True)
class Flask:
    """The instances, the skill rubrics and the judge prompt, loaded."""

    instances: tuple[Instance, ...]
    rubrics: tuple[Rubric, ...]
    system_prompt: str
    template: str
    defaults: Mapping[str, str]

    def rubric_for(self, skill: str) -> Rubric:
        """The rubric whose name contains the instance's skill label."""
        wanted = skill.strip().lower()
        for rubric in self.rubrics:
            if wanted in rubric.skill.lower() or rubric.skill.lower() in wanted:
                return rubric
        raise BenchmarkDataError(f"no FLASK rubric matches skill {skill!r}")

    def judge_messages(self, instance: Instance, response: str) -> list[dict[str, str]]:
        """The rubric prompt: the instance's skills, reference answer, response."""
        sections = []
        for skill in instance.skills:
            rubric = self.rubric_for(skill)
            lines = [f"{rubric.skill}: {rubric.criteria}"]
            lines += [f"Score {n}: {text}" for n, text in enumerate(rubric.scoring, 1)]
            sections.append("\n".join(lines))
        user = self.template.format(
            prompt1=self.defaults.get("prompt1", ""),
            prompt2=self.defaults.get("prompt2", ""),
            skills="\n\n".join(sections),
            question=instance.instruction,
            response=response,
            sample_answer=instance.answer,
        )
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": user},
        ]


def load_flask(data: Path, *, subset: str = "full", verify: bool = True) -> Flask:
    """Load a user's FLASK checkout, checking digests unless `verify` is off.

    Args:
        data: The root of a kaistAI/FLASK checkout.
        subset: `full` (1,740 instances) or `hard` (FLASK-Hard, 89).
        verify: Refuse files that differ from the pinned upstream version.
    """
    if subset not in ("full", "hard"):
        raise BenchmarkDataError(
            f"FLASK subset must be 'full' or 'hard', not {subset!r}"
        )
    paths: dict[str, Path] = {}
    for key in (subset, "rubrics", "prompts"):
        relative, digest = FILES[key]
        path = find_file(data, (relative,), f"FLASK {key}", _HINT)
        if verify:
            check_digest(
                path,
                digest,
                f"FLASK {key}",
                "Check out the pinned commit, or pass "
                "--no-verify to use another version (scores are then not comparable).",
            )
        paths[key] = path
    instances = tuple(
        normalise(r) for r in read_jsonl(paths[subset], "FLASK instances")
    )
    if not instances:
        raise BenchmarkDataError(f"{paths[subset]} holds no FLASK instances. {_HINT}")
    seen: set[int] = set()
    for instance in instances:
        if instance.idx in seen:
            # Answers and reviews are keyed by id: a repeat would take the
            # other instance's answer.
            raise BenchmarkDataError(
                f"{paths[subset]}: instance {instance.idx} appears twice; give "
                "every instance its own id."
            )
        seen.add(instance.idx)
    rubrics = _rubrics(paths["rubrics"])
    prompts = read_jsonl(paths["prompts"], "FLASK judge prompts")
    # The upstream evaluator always uses the second prompt: the one that shows
    # the reference answer.
    chosen = next((p for p in prompts if p.get("prompt_id") == 2), None)
    chosen = chosen or (prompts[-1] if prompts else None)
    if not chosen or not all(
        isinstance(chosen.get(k), str) for k in ("system_prompt", "prompt_template")
    ):
        raise BenchmarkDataError(
            f"{paths['prompts']}: no judge prompt with a system_prompt and a "
            f"prompt_template. {_HINT}"
        )
    return Flask(
        instances=instances,
        rubrics=rubrics,
        system_prompt=str(chosen["system_prompt"]),
        template=str(chosen["prompt_template"]),
        defaults=dict(chosen.get("defaults") or {}),
    )


def _rubrics(path: Path) -> tuple[Rubric, ...]:
    entries = read_json(path, "FLASK rubrics")
    try:
        rubrics = tuple(
            Rubric(
                skill=str(entry["Skill"]),
                criteria=str(entry["Criteria"]),
                scoring=tuple(str(entry["Scoring"][str(n)]) for n in range(1, 6)),  # type: ignore[arg-type]
            )
            for entry in entries
        )
    except (KeyError, TypeError) as exc:
        raise BenchmarkDataError(
            f"{path}: every rubric needs Skill, Criteria and Scoring 1-5 "
            f"(missing {exc}). {_HINT}"
        ) from None
    if not rubrics:
        raise BenchmarkDataError(f"{path} holds no rubrics. {_HINT}")
    return rubrics


_NOT_APPLICABLE = {"na", "n/a", "not applicable"}


def parse_review(review: str) -> dict[str, Any]:
    """The last `{...}` in the review as skill -> score; {} when unreadable."""
    found = re.findall(r"{[^}]+}", review)
    if not found:
        return {}
    text = found[-1].replace("\n", "").replace("_", " ").lower()
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return {}
    if not isinstance(parsed, dict):
        return {}
    return {
        str(key): "N/A"
        if isinstance(value, str) and value.strip() in _NOT_APPLICABLE
        else value
        for key, value in parsed.items()
    }


def skill_key(label: str) -> str:
    """`logical correctness` -> `correctness`; otherwise the first word."""
    words = label.strip().lower().split()
    if not words:
        return ""
    if "logical" in label.lower() and len(words) > 1:
        return words[1]
    return words[0]


class SkillMean(TypedDict):
    """A skill's mean score and how many instances it is over."""

    mean: float
    count: int


class FlaskScores(TypedDict):
    """Per-skill means, overall and by difficulty and domain."""

    by_skill: dict[str, SkillMean]
    by_difficulty: dict[str, dict[str, SkillMean]]
    by_domain: dict[str, dict[str, SkillMean]]
    n_reviews: int
    n_unparsed: int


def _means(totals: Mapping[str, list[float]]) -> dict[str, SkillMean]:
    ordered = [s for s in SKILLS if s in totals] + sorted(
        s for s in totals if s not in SKILLS
    )
    return {
        s: SkillMean(mean=math.fsum(totals[s]) / len(totals[s]), count=len(totals[s]))
        for s in ordered
    }


def _on_the_scale(value: Any) -> bool:
    """Whether a judge's score is one FLASK's 1-5 scale allows."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and 1 <= value <= 5


def aggregate(reviews: Iterable[Mapping[str, Any]]) -> FlaskScores:
    """Means of the parsed scores, each on FLASK's 1-5 scale.

    N/A, non-numeric values and scores off the scale are left out; a review
    with none left counts as unparsed.

    Each review carries its instance's `difficulty` and `domains`, so the
    breakdowns need no access to the data.
    """
    overall: dict[str, list[float]] = {}
    difficulty: dict[str, dict[str, list[float]]] = {}
    domain: dict[str, dict[str, list[float]]] = {}
    count = unparsed = 0
    for review in reviews:
        count += 1
        scores = {
            label: float(value)
            for label, value in (review.get("score") or {}).items()
            if _on_the_scale(value)
        }
        if not scores:
            unparsed += 1
            continue
        for label, value in scores.items():
            skill = skill_key(str(label))
            overall.setdefault(skill, []).append(float(value))
            level = str(review.get("difficulty", "unknown"))
            difficulty.setdefault(level, {}).setdefault(skill, []).append(float(value))
            for name in review.get("domains") or ():
                domain.setdefault(str(name), {}).setdefault(skill, []).append(
                    float(value)
                )
    return FlaskScores(
        by_skill=_means(overall),
        by_difficulty={k: _means(v) for k, v in sorted(difficulty.items())},
        by_domain={k: _means(v) for k, v in sorted(domain.items())},
        n_reviews=count,
        n_unparsed=unparsed,
    )


def review_record(instance: Instance, review: str) -> dict[str, Any]:
    """One judged instance: the review, its parsed scores and the breakdown keys."""
    return {
        "question_id": instance.idx,
        "skills": list(instance.skills),
        "difficulty": instance.difficulty,
        "domains": list(instance.domains),
        "review": review,
        "score": parse_review(review),
    }
