"""AlpacaEval 2.0: the eval set, the weighted judge's prompt and parse, the metrics.

The judge (`weighted_alpaca_eval_gpt4_turbo`) sees the instruction and two
outputs labelled `m` and `M` and answers with one token; the preference is read
from that token's log-probabilities. Which output is shown as `m` is decided by
a seeded coin per instruction, reproduced here exactly, so annotations made
by this package and by the official tool agree row for row.
"""

from __future__ import annotations

import math
import random
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing_extensions import TypedDict

from attention_moa_graph.evaluation.datafiles import (
    BenchmarkDataError,
    find_file,
    read_json,
)
from attention_moa_graph.evaluation.length_control import (
    GamedBaselines,
    length_controlled_winrate,
)

ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
"""The AlpacaEval 2.0 default annotator this module reproduces."""
DEFAULT_JUDGE = "openai:gpt-4-1106-preview"
BASELINE = "gpt4_1106_preview"
"""The reference generator of AlpacaEval 2.0 (`output_1` in every annotation)."""
JUDGE_KWARGS: dict[str, Any] = {
    "max_tokens": 1,
    "temperature": 1.0,
    "logprobs": True,
    "top_logprobs": 5,
}
"""The annotator's decoding settings: one token, its five most likely tokens."""

_HINT = (
    "Point --data at a copy of the AlpacaEval files: the reference outputs "
    "(results/gpt4_1106_preview/model_outputs.json in tatsu-lab/alpaca_eval) and "
    "the judge prompt (evaluators_configs/alpaca_eval_clf_gpt4_turbo/"
    "alpaca_eval_clf.txt); a checkout of the repository works as it is."
)
REFERENCE_FILES = (
    "gpt4_1106_preview_model_outputs.json",
    "results/gpt4_1106_preview/model_outputs.json",
    "model_outputs.json",
)
PROMPT_FILES = (
    "evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt",
    "src/alpaca_eval/evaluators_configs/alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt",
    "alpaca_eval_clf.txt",
)


class EvalItem(TypedDict):
    """One instruction of the eval set with the baseline's output."""

    instruction: str
    output: str
    generator: str
    dataset: str


def load_eval_set(data: Path) -> list[EvalItem]:
    """The 805 instructions with the baseline outputs, in eval-set order.

    Args:
        data: The baseline `model_outputs.json`, or a directory holding it.
    """
    path = find_file(data, REFERENCE_FILES, "AlpacaEval reference outputs", _HINT)
    rows = read_json(path, "AlpacaEval reference outputs")
    if not isinstance(rows, list) or not rows:
        raise BenchmarkDataError(f"{path}: expected a JSON array of outputs. {_HINT}")
    items: list[EvalItem] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not all(
            isinstance(row.get(key), str) for key in ("instruction", "output")
        ):
            raise BenchmarkDataError(
                f"{path}: entry {index} needs string 'instruction' and 'output'."
            )
        if row["instruction"] in seen:
            # Judgments are matched to answers by instruction: a repeat
            # would take the other entry's verdict.
            raise BenchmarkDataError(
                f"{path}: entry {index} repeats an earlier instruction "
                f"({row['instruction'][:60]!r}); every instruction must be unique."
            )
        seen.add(row["instruction"])
        items.append(
            EvalItem(
                instruction=row["instruction"],
                output=row["output"],
                generator=str(row.get("generator", BASELINE)),
                dataset=str(row.get("dataset", "")),
            )
        )
    return items


@dataclass(frozen=True)
class JudgeTemplate:
    """The judge prompt: ChatML text split into (role, template) messages."""

    messages: tuple[tuple[str, str], ...]

    PLACEHOLDERS = ("instruction", "output_1", "output_2")

    @classmethod
    def parse(cls, text: str, source: str = "judge prompt") -> JudgeTemplate:
        """Split `<|im_start|>role ... <|im_end|>` blocks into messages."""
        blocks = re.findall(r"<\|im_start\|>(\w+)\n(.*?)\n?<\|im_end\|>", text, re.S)
        if not blocks:
            raise BenchmarkDataError(f"{source}: no <|im_start|> ... <|im_end|> block.")
        joined = "".join(body for _, body in blocks)
        missing = [p for p in cls.PLACEHOLDERS if "{" + p + "}" not in joined]
        if missing:
            raise BenchmarkDataError(f"{source}: placeholders {missing} are missing.")
        return cls(tuple((role, body) for role, body in blocks))

    def render(
        self, instruction: str, output_1: str, output_2: str
    ) -> list[dict[str, str]]:
        """Fill each placeholder's first occurrence, as the official tool does.

        The template is scanned once, so a value that itself contains a
        placeholder's text (an instruction quoting `{output_1}`) is never
        substituted again.
        """
        values = {
            "instruction": instruction,
            "output_1": output_1,
            "output_2": output_2,
        }
        pending = set(values)
        rendered: list[dict[str, str]] = []
        for role, body in self.messages:
            pieces: list[str] = []
            position = 0
            for match in re.finditer(r"\{(instruction|output_1|output_2)\}", body):
                name = match.group(1)
                if name not in pending:
                    continue
                pending.discard(name)
                pieces.append(body[position : match.start()])
                pieces.append(values[name])
                position = match.end()
            pieces.append(body[position:])
            rendered.append({"role": role, "content": "".join(pieces)})
        return rendered


def load_judge_template(data: Path) -> JudgeTemplate:
    """The official judge prompt (`alpaca_eval_clf.txt`) from the user's copy."""
    path = find_file(data, PROMPT_FILES, "AlpacaEval judge prompt", _HINT)
    return JudgeTemplate.parse(path.read_text(encoding="utf-8"), str(path))


def is_switched(instruction: str, seed: int = 0) -> bool:
    """Whether the judge sees the baseline as `M` and the model as `m`.

    Python's `random`, seeded with a string made of the instruction and the
    annotator seed: the official position-randomisation rule.
    """
    rng = random.Random(f"is_switched_outputs{instruction}{seed}")
    return rng.choices([False, True], k=1)[0]


def preference_from_logprobs(
    top_logprobs: Mapping[str, float] | None, switched: bool
) -> float:
    """The preference in [1, 2] (2: the model is better), or NaN if unreadable.

    `top_logprobs` maps the first generated token's candidates to their
    log-probabilities; only `m` and `M` count.
    """
    if not top_logprobs:
        return math.nan
    log_m = top_logprobs.get("m", -math.inf)
    log_big = top_logprobs.get("M", -math.inf)
    if log_m == -math.inf and log_big == -math.inf:
        return math.nan
    top = max(log_m, log_big)  # shift before exp: no underflow to 0/0
    weight_m, weight_big = math.exp(log_m - top), math.exp(log_big - top)
    shown = 2.0 - weight_m / (weight_m + weight_big)
    return 3.0 - shown if switched else shown


def top_logprobs_of(raw_completion: Any) -> dict[str, float] | None:
    """The first token's top log-probabilities from an OpenAI-style completion."""
    if not isinstance(raw_completion, Mapping):
        return None
    logprobs = raw_completion.get("logprobs") or {}
    content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
    if not content:
        return None
    first = content[0]
    top = first.get("top_logprobs") or [
        {"token": first.get("token"), "logprob": first.get("logprob")}
    ]
    return {
        str(entry["token"]): float(entry["logprob"])
        for entry in top
        if entry.get("token") is not None and entry.get("logprob") is not None
    }


class WinRate(TypedDict):
    """The leaderboard columns this package computes offline."""

    win_rate: float
    standard_error: float
    n_wins: int
    n_wins_base: int
    n_draws: int
    n_total: int
    discrete_win_rate: float
    avg_length: int | None
    length_controlled_winrate: float | None
    lc_standard_error: float | None
    length_controlled_note: str


LC_UNAVAILABLE = (
    "n/a: the length-controlled win rate needs AlpacaEval's df_gamed.csv "
    "(not supplied); the weighted win rate is exact without it"
)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def _sem(values: Sequence[float]) -> float:
    if len(values) < 2:
        return math.nan
    return statistics.stdev(values) / math.sqrt(len(values))


def _valid(preference: float) -> bool:
    return not math.isnan(preference) and 1.0 <= preference <= 2.0


def win_rate(
    preferences: Iterable[float | None], outputs: Iterable[str] | None = None
) -> WinRate:
    """Weighted and discrete win rates from preferences (1: baseline, 2: model).

    Missing or NaN preferences and values outside [1, 2] are dropped from
    every count but `n_draws`, which counts exact ties (1.5, or the legacy 0)
    before anything is dropped, as the official metric does.
    `avg_length` is the mean length in characters of `outputs` (the model's).
    """
    raw = [math.nan if p is None else float(p) for p in preferences]
    draws = sum(1 for p in raw if p in (1.5, 0.0))
    prefs = [1.5 if p == 0.0 else p for p in raw]
    kept = [p - 1.0 for p in prefs if _valid(p)]
    discrete = [0.5 if p == 1.5 else float(round(p)) - 1.0 for p in prefs if _valid(p)]
    lengths = [len(text) for text in outputs] if outputs is not None else []
    return WinRate(
        win_rate=100 * _mean(kept),
        standard_error=100 * _sem(kept),
        n_wins=sum(1 for p in kept if p > 0.5),
        n_wins_base=sum(1 for p in kept if p < 0.5),
        n_draws=draws,
        n_total=len(kept),
        discrete_win_rate=100 * _mean(discrete),
        avg_length=int(_mean(lengths)) if lengths else None,
        length_controlled_winrate=None,
        lc_standard_error=None,
        length_controlled_note=LC_UNAVAILABLE,
    )


def load_annotations(path: Path) -> list[dict[str, Any]]:
    """An annotations file (this package's or the official tool's)."""
    rows = read_json(path, "AlpacaEval annotations")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise BenchmarkDataError(
            f"{path}: expected a JSON array of annotation objects, as written by "
            "`attention-moa eval alpaca-eval judge` or `alpaca_eval`."
        )
    if not any("preference" in row for row in rows):
        raise BenchmarkDataError(
            f"{path}: no row has a 'preference'; is this an annotations file?"
        )
    seen: dict[tuple[str, str], int] = {}
    for index, row in enumerate(rows):
        preference = row.get("preference")
        if preference is not None and (
            isinstance(preference, bool) or not isinstance(preference, (int, float))
        ):
            raise BenchmarkDataError(
                f"{path}: row {index}: preference {preference!r:.40} is not a "
                "number (1: the baseline is better, 2: the model; null: no verdict)."
            )
        key = (str(row.get("instruction")), str(row.get("generator_2")))
        if key in seen:
            raise BenchmarkDataError(
                f"{path}: rows {seen[key]} and {index} annotate the same instruction "
                "for the same model; a win rate counts each once: keep one of them."
            )
        seen[key] = index
    return rows


def score_annotations(
    rows: Sequence[Mapping[str, Any]], gamed: GamedBaselines | None = None
) -> WinRate:
    """Win rates of an annotations file; `avg_length` over `output_2` if present.

    With `gamed` (the user's `df_gamed.csv`, see `length_control`) the
    length-controlled win rate is fitted too; without it LC is n/a.
    """
    outputs = [row["output_2"] for row in rows if isinstance(row.get("output_2"), str)]
    scores = win_rate(
        (row.get("preference") for row in rows),
        outputs if len(outputs) == len(rows) else None,
    )
    if gamed is not None:
        if len(outputs) != len(rows):
            raise BenchmarkDataError(
                "the length-controlled win rate needs output_1 and output_2 in "
                "every annotation row."
            )
        lc = length_controlled_winrate(rows, gamed)
        scores["length_controlled_winrate"] = lc["length_controlled_winrate"]
        scores["lc_standard_error"] = lc["lc_standard_error"]
        scores["length_controlled_note"] = lc["length_controlled_note"]
    return scores
