"""MT-Bench: questions, FastChat's single-answer judge prompts, score parsing, means.

Each of the 80 questions has two user turns; the second is answered with the
first exchange in context. The judge grades one turn at a time with the
prompt FastChat picks for the question's category and the turn, and its 1-10
rating is read from `[[x]]` (or `[x]`).
"""

from __future__ import annotations

import ast
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing_extensions import TypedDict

from attention_moa_graph.evaluation.datafiles import (
    BenchmarkDataError,
    find_file,
    read_jsonl,
)

DEFAULT_JUDGE = "openai:gpt-4"
JUDGE_KWARGS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 2048}
CATEGORIES = (
    "writing",
    "roleplay",
    "reasoning",
    "math",
    "coding",
    "extraction",
    "stem",
    "humanities",
)
NEEDS_REFERENCE = frozenset({"math", "reasoning", "coding"})
"""Categories graded against GPT-4's reference answers."""
TEMPERATURES: dict[str, float] = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}
"""FastChat's sampling temperature per category, for generation."""
MAX_TOKENS = 1024
"""FastChat's answer cap for API models (`gen_api_answer.py --max-tokens`)."""
SYSTEM_MESSAGE = "You are a helpful assistant."
"""The system message of FastChat's conversation template for API models."""

_HINT = (
    "Point --data at FastChat's MT-Bench data: fastchat/llm_judge/data/mt_bench "
    "(question.jsonl, reference_answer/gpt-4.jsonl) with judge_prompts.jsonl in it "
    "or in its parent directory; a FastChat checkout works as it is."
)


@dataclass(frozen=True)
class Question:
    """One MT-Bench question: two user turns."""

    question_id: int
    category: str
    turns: tuple[str, str]

    @property
    def temperature(self) -> float:
        """FastChat's generation temperature for this question."""
        return TEMPERATURES.get(self.category, 0.7)


@dataclass(frozen=True)
class JudgePrompt:
    """One of FastChat's judge prompts (`judge_prompts.jsonl`)."""

    name: str
    system_prompt: str
    prompt_template: str

    def render(self, **values: str) -> list[dict[str, str]]:
        """The judge's [system, user] messages; values are never re-formatted."""
        try:
            user = self.prompt_template.format(**values)
        except (KeyError, IndexError) as exc:
            raise BenchmarkDataError(
                f"judge prompt {self.name!r} needs placeholder {exc}"
            ) from exc
        return [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": user},
        ]


@dataclass(frozen=True)
class MTBench:
    """The benchmark's files, loaded."""

    questions: tuple[Question, ...]
    references: Mapping[int, tuple[str, str]]
    prompts: Mapping[str, JudgePrompt]

    def prompt_name(self, question: Question, turn: int) -> str:
        """FastChat's choice of single-answer prompt for a category and turn."""
        base = "single-math-v1" if question.category in NEEDS_REFERENCE else "single-v1"
        return base if turn == 1 else f"{base}-multi-turn"

    def judge_messages(
        self, question: Question, answers: Sequence[str], turn: int
    ) -> tuple[str, list[dict[str, str]]]:
        """The prompt name and the judge's messages for one answered turn."""
        name = self.prompt_name(question, turn)
        if name not in self.prompts:
            raise BenchmarkDataError(f"judge prompt {name!r} is missing. {_HINT}")
        values: dict[str, str] = {}
        if turn == 1:
            values.update(question=question.turns[0], answer=answers[0])
        else:
            values.update(
                question_1=question.turns[0],
                question_2=question.turns[1],
                answer_1=answers[0],
                answer_2=answers[1],
            )
        if question.category in NEEDS_REFERENCE:
            reference = self.references.get(question.question_id)
            if reference is None:
                raise BenchmarkDataError(
                    f"question {question.question_id} ({question.category}) has no "
                    f"reference answer in reference_answer/gpt-4.jsonl. {_HINT}"
                )
            values["ref_answer_1"] = reference[0]
            if turn == 2:
                values["ref_answer_2"] = reference[1]
        return name, self.prompts[name].render(**values)


def load_mt_bench(data: Path) -> MTBench:
    """Load questions, GPT-4 reference answers and judge prompts from `data`."""
    questions_path = find_file(
        data,
        ("question.jsonl", "fastchat/llm_judge/data/mt_bench/question.jsonl"),
        "MT-Bench questions",
        _HINT,
    )
    folder = questions_path.parent
    references_path = find_file(
        folder, ("reference_answer/gpt-4.jsonl",), "MT-Bench reference answers", _HINT
    )
    prompts_path = find_file(
        folder,
        ("judge_prompts.jsonl", "../judge_prompts.jsonl"),
        "MT-Bench judge prompts",
        _HINT,
    )
    questions: list[Question] = []
    seen: set[int] = set()
    for row in read_jsonl(questions_path, "MT-Bench questions"):
        turns = row.get("turns")
        where = f"{questions_path}: question {row.get('question_id')}"
        if not (isinstance(turns, list) and len(turns) == 2):
            raise BenchmarkDataError(f"{where} needs two turns.")
        if not isinstance(row.get("question_id"), int) or not row.get("category"):
            raise BenchmarkDataError(
                f"{where} needs a whole-number question_id and a category."
            )
        if row["question_id"] in seen:
            # Answers are keyed by id: a second question with it would get
            # the first one's answer.
            raise BenchmarkDataError(
                f"{where} appears twice; give every question its own id."
            )
        seen.add(row["question_id"])
        questions.append(
            Question(row["question_id"], str(row["category"]), (turns[0], turns[1]))
        )
    if not questions:
        raise BenchmarkDataError(f"{questions_path} holds no questions.")
    return MTBench(
        tuple(questions), _references(references_path), _prompts(prompts_path)
    )


def _references(path: Path) -> dict[int, tuple[str, str]]:
    references: dict[int, tuple[str, str]] = {}
    for number, row in enumerate(read_jsonl(path, "MT-Bench reference answers"), 1):
        try:
            turns = row["choices"][0]["turns"]
            references[int(row["question_id"])] = (str(turns[0]), str(turns[1]))
        except (KeyError, IndexError, TypeError, ValueError):
            raise BenchmarkDataError(
                f"{path}: record {number} needs a question_id and two "
                f"choices[0].turns. {_HINT}"
            ) from None
    return references


def _prompts(path: Path) -> dict[str, JudgePrompt]:
    prompts: dict[str, JudgePrompt] = {}
    for number, row in enumerate(read_jsonl(path, "MT-Bench judge prompts"), 1):
        fields = ("name", "system_prompt", "prompt_template")
        missing = [key for key in fields if not isinstance(row.get(key), str)]
        if missing:
            raise BenchmarkDataError(
                f"{path}: judge prompt {number} has no {', '.join(missing)}. {_HINT}"
            )
        prompts[row["name"]] = JudgePrompt(
            row["name"], row["system_prompt"], row["prompt_template"]
        )
    return prompts


_DOUBLE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
_SINGLE = re.compile(r"\[(\d+\.?\d*)\]")


def _on_scale(rating: float) -> bool:
    """Whether a rating is on the judge's 1-10 scale (NaN is not)."""
    return 1.0 <= rating <= 10.0


def parse_rating(judgment: str) -> float:
    """The first `[[x]]` rating, else the first `[x]`; -1 when there is none.

    A rating off the judge's 1-10 scale is no rating (-1): counted as failed,
    never averaged.

    Example:
        >>> parse_rating("Rating: [[7.5]]"), parse_rating("[[99999]]")
        (7.5, -1.0)
    """
    match = _DOUBLE.search(judgment) or _SINGLE.search(judgment)
    if match is None:
        return -1.0
    try:
        rating = float(ast.literal_eval(match.group(1)))
    except (ValueError, SyntaxError):
        return -1.0
    return rating if _on_scale(rating) else -1.0


def answer_record(
    question_id: int, model_id: str, turns: Sequence[str], answer_id: str
) -> dict[str, Any]:
    """One line of FastChat's `model_answer/<model>.jsonl`."""
    return {
        "question_id": question_id,
        "answer_id": answer_id,
        "model_id": model_id,
        "choices": [{"index": 0, "turns": list(turns)}],
        "tstamp": time.time(),
    }


def judgment_record(
    question_id: int,
    category: str,
    model: str,
    judge: str,
    prompt_name: str,
    messages: Sequence[Mapping[str, str]],
    judgment: str,
    turn: int,
) -> dict[str, Any]:
    """One line of FastChat's `model_judgment/<judge>_single.jsonl`."""
    return {
        "question_id": question_id,
        "model": model,
        "judge": [judge, prompt_name],
        "user_prompt": messages[-1]["content"],
        "judgment": judgment,
        "score": parse_rating(judgment),
        "turn": turn,
        "tstamp": time.time(),
        "category": category,
    }


class Scores(TypedDict):
    """MT-Bench means: overall, per turn and per category, with failures counted."""

    score: float
    turn_1: float
    turn_2: float
    by_category: dict[str, float]
    n_scored: int
    n_failed: int


def score_judgments(rows: Sequence[Mapping[str, Any]], where: Path) -> dict[str, Any]:
    """Scores of a FastChat judgment file: per model when it holds several.

    FastChat's `show_result` averages each model's judgments on their own; a
    file with one model gives that model's `Scores`, one with several gives
    `{"by_model": {model: Scores}}`, best first.

    Raises:
        BenchmarkDataError: If a row lacks its model, question_id, turn or score.
    """
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for number, row in enumerate(rows, start=1):
        try:
            float(row["score"]), int(row["turn"]), int(row["question_id"])
        except (KeyError, TypeError, ValueError):
            raise BenchmarkDataError(
                f"{where}: judgment {number} needs a numeric score, turn and "
                "question_id (FastChat's single-answer judgment format)."
            ) from None
        by_model.setdefault(str(row.get("model", "")), []).append(row)
    if not by_model:
        raise BenchmarkDataError(f"{where} holds no judgments.")
    if len(by_model) == 1:
        return dict(aggregate(rows))
    scored = {model: aggregate(own) for model, own in by_model.items()}
    ranked = sorted(scored, key=lambda m: -_rank(scored[m]["score"]))
    return {"by_model": {model: dict(scored[model]) for model in ranked}}


def _rank(score: float) -> float:
    return score if math.isfinite(score) else -math.inf


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def aggregate(
    judgments: Iterable[Mapping[str, Any]],
    categories: Mapping[int, str] | None = None,
) -> Scores:
    """FastChat's means: failed ratings are dropped (and counted), the rest averaged.

    Failed: -1 (no rating found), and ratings off the 1-10 scale (or NaN).

    A row's category is its own `category` field, else looked up in
    `categories` by question id.
    """
    lookup = categories or {}
    valid: list[Mapping[str, Any]] = []
    failed = 0
    for row in judgments:
        if not _on_scale(float(row["score"])):  # -1 (no rating), or off the scale
            failed += 1
        else:
            valid.append(row)
    by_category: dict[str, list[float]] = {}
    for row in valid:
        category = str(
            row.get("category") or lookup.get(int(row["question_id"]), "unknown")
        )
        by_category.setdefault(category, []).append(float(row["score"]))
    ordered = [c for c in CATEGORIES if c in by_category] + sorted(
        c for c in by_category if c not in CATEGORIES
    )
    return Scores(
        score=_mean([float(r["score"]) for r in valid]),
        turn_1=_mean([float(r["score"]) for r in valid if int(r["turn"]) == 1]),
        turn_2=_mean([float(r["score"]) for r in valid if int(r["turn"]) == 2]),
        by_category={c: _mean(by_category[c]) for c in ordered},
        n_scored=len(valid),
        n_failed=failed,
    )
