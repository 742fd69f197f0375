"""Each benchmark's part in a run: its items, its official files, its judge calls.

The three benchmarks share the generation runner and the judge runner; this
module holds what differs: which items there are, how answers are written in
the format the official tools read, which judge prompt each answer gets and
how the judge's reply becomes a score.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage

from attention_moa_graph.evaluation import alpaca_eval, flask, mt_bench
from attention_moa_graph.evaluation.datafiles import (
    BenchmarkDataError,
    read_jsonl,
    write_json,
    write_jsonl,
)
from attention_moa_graph.evaluation.generation import ItemRecord, WorkItem
from attention_moa_graph.evaluation.judging import JudgeJob
from attention_moa_graph.evaluation.length_control import GamedBaselines

BENCHMARKS = ("alpaca-eval", "mt-bench", "flask")
GENERATION_TEMPERATURE = 0.7
"""AlpacaEval and FLASK sampling temperature in the MoA papers' scripts."""


@dataclass(frozen=True)
class Judging:
    """A benchmark's judge calls and what to do with their rows."""

    jobs: list[JudgeJob]
    journal: Path
    finish: Callable[[dict[str, dict[str, Any]]], dict[str, Any]]
    """All rows by key -> the scores (the official judgment file is written)."""


def _journal(out: Path, judge: str) -> Path:
    # One journal per judge: another judge's verdicts are never reused.
    return out / f"judge_journal-{judge_id(judge).replace('/', '-')}.jsonl"


def judge_id(spec: str) -> str:
    """The judge's model name without its provider (`gpt-4` for `openai:gpt-4`)."""
    return spec.split(":", 1)[-1]


def work_items(
    benchmark: str,
    data: Path,
    *,
    limit: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    subset: str = "full",
    verify: bool = True,
) -> list[WorkItem]:
    """The items to answer, first `limit` only when given.

    `temperature` overrides the benchmark's own (FastChat's per category for
    MT-Bench, 0.7 otherwise); `max_tokens` overrides MT-Bench's 1,024 (the
    other benchmarks have no cap of their own).
    """
    items: list[WorkItem]
    if benchmark == "alpaca-eval":
        default = GENERATION_TEMPERATURE if temperature is None else temperature
        items = [
            WorkItem(str(i), (row["instruction"],), default, max_tokens=max_tokens)
            for i, row in enumerate(alpaca_eval.load_eval_set(data))
        ]
    elif benchmark == "mt-bench":
        items = [
            WorkItem(
                str(q.question_id),
                q.turns,
                q.temperature if temperature is None else temperature,
                system=mt_bench.SYSTEM_MESSAGE,
                max_tokens=mt_bench.MAX_TOKENS if max_tokens is None else max_tokens,
            )
            for q in mt_bench.load_mt_bench(data).questions
        ]
    elif benchmark == "flask":
        default = GENERATION_TEMPERATURE if temperature is None else temperature
        items = [
            WorkItem(str(i.idx), (i.instruction,), default, max_tokens=max_tokens)
            for i in flask.load_flask(data, subset=subset, verify=verify).instances
        ]
    else:
        raise BenchmarkDataError(
            f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}."
        )
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be >= 1, got {limit}.")
        items = items[:limit]
    return items


def write_outputs(
    benchmark: str,
    data: Path,
    out: Path,
    name: str,
    records: Mapping[str, ItemRecord],
    *,
    subset: str = "full",
    verify: bool = True,
) -> Path:
    """Write the answers in the official format; returns the file written."""
    if benchmark == "alpaca-eval":
        rows = alpaca_eval.load_eval_set(data)
        path = out / "model_outputs.json"
        write_json(
            path,
            [
                {
                    "instruction": row["instruction"],
                    "output": records[str(i)]["turns"][0]["answer"],
                    "generator": name,
                    "dataset": row["dataset"],
                }
                for i, row in enumerate(rows)
                if str(i) in records
            ],
        )
        return path
    if benchmark == "mt-bench":
        path = out / "model_answer" / f"{name}.jsonl"
        write_jsonl(
            path,
            (
                mt_bench.answer_record(
                    int(key),
                    name,
                    [turn["answer"] for turn in record["turns"]],
                    answer_id=f"{name}-{key}",
                )
                for key, record in sorted(records.items(), key=lambda kv: int(kv[0]))
            ),
        )
        return path
    path = out / "flask_answers.jsonl"
    write_jsonl(
        path,
        (
            {"question_id": int(key), "text": record["turns"][0]["answer"]}
            for key, record in sorted(records.items(), key=lambda kv: int(kv[0]))
        ),
    )
    return path


def _alpaca_judging(
    data: Path, out: Path, judge: str, gamed: GamedBaselines | None
) -> Judging:
    eval_set = alpaca_eval.load_eval_set(data)
    template = alpaca_eval.load_judge_template(data)
    outputs = _load_outputs(out / "model_outputs.json")
    by_instruction = {row["instruction"]: row for row in eval_set}
    jobs: list[JudgeJob] = []
    settled: dict[str, dict[str, Any]] = {}
    for index, row in enumerate(outputs):
        base = by_instruction.get(row["instruction"])
        if base is None:
            raise BenchmarkDataError(
                f"model_outputs.json entry {index} is not an AlpacaEval instruction: "
                f"{row['instruction'][:80]!r}"
            )
        annotation = {
            "instruction": row["instruction"],
            "dataset": base["dataset"],
            "output_1": base["output"],
            "generator_1": base["generator"],
            "output_2": row["output"],
            "generator_2": row["generator"],
            "annotator": alpaca_eval.ANNOTATOR,
        }
        if row["output"] == base["output"]:
            # Identical outputs are a draw without asking the judge.
            settled[row["instruction"]] = {**annotation, "preference": 1.5}
            continue
        switched = alpaca_eval.is_switched(row["instruction"])
        shown = (
            (row["output"], base["output"])
            if switched
            else (base["output"], row["output"])
        )
        messages = template.render(row["instruction"], *shown)

        def to_row(
            reply: BaseMessage,
            seconds: float,
            annotation: dict[str, Any] = annotation,
            switched: bool = switched,
        ) -> dict[str, Any]:
            raw = {
                "logprobs": reply.response_metadata.get("logprobs"),
                "content": str(reply.text),
            }
            top = alpaca_eval.top_logprobs_of(raw)
            if top is None and str(reply.text).strip() in ("m", "M"):
                # A judge without log-probabilities: its one-token verdict.
                top = {str(reply.text).strip(): 0.0}
            return {
                **annotation,
                "preference": alpaca_eval.preference_from_logprobs(top, switched),
                "is_switched_outputs": switched,
                "raw_completion": raw,
                "time_per_example": round(seconds, 3),
            }

        jobs.append(
            JudgeJob(row["instruction"], messages, to_row, alpaca_eval.JUDGE_KWARGS)
        )

    def finish(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
        rows = {**rows, **settled}
        annotations = [
            rows[r["instruction"]] for r in outputs if r["instruction"] in rows
        ]
        # JSON has no NaN: an unreadable preference is written as null, which
        # the official reader treats as "no preference".
        write_json(out / "annotations.json", annotations)
        return dict(alpaca_eval.score_annotations(annotations, gamed))

    return Judging(jobs, _journal(out, judge), finish)


def _load_outputs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        raise BenchmarkDataError(
            f"{path} not found: run `attention-moa eval ... generate` into this "
            "directory first."
        )
    rows: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return rows


def _mt_bench_judging(data: Path, out: Path, judge: str, name: str) -> Judging:
    bench = mt_bench.load_mt_bench(data)
    answers_path = out / "model_answer" / f"{name}.jsonl"
    if not answers_path.exists():
        raise BenchmarkDataError(
            f"{answers_path} not found: run `attention-moa eval mt-bench generate` "
            "into this directory first."
        )
    by_id = {q.question_id: q for q in bench.questions}
    categories = {q.question_id: q.category for q in bench.questions}
    jobs: list[JudgeJob] = []
    for answer in read_jsonl(answers_path, "MT-Bench answers"):
        question = by_id[int(answer["question_id"])]
        turns = answer["choices"][0]["turns"]
        for turn in (1, 2):
            prompt_name, messages = bench.judge_messages(question, turns, turn)

            def to_row(
                reply: BaseMessage,
                seconds: float,
                qid: int = question.question_id,
                turn: int = turn,
                prompt_name: str = prompt_name,
                messages: list[dict[str, str]] = messages,
            ) -> dict[str, Any]:
                return mt_bench.judgment_record(
                    qid,
                    categories[qid],
                    name,
                    judge_id(judge),
                    prompt_name,
                    messages,
                    str(reply.text),
                    turn,
                )

            jobs.append(
                JudgeJob(
                    f"{question.question_id}/{turn}",
                    messages,
                    to_row,
                    mt_bench.JUDGE_KWARGS,
                )
            )

    def finish(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
        ordered = [rows[job.key] for job in jobs if job.key in rows]
        write_jsonl(out / "model_judgment" / f"{judge_id(judge)}_single.jsonl", ordered)
        return dict(mt_bench.aggregate(ordered, categories))

    return Judging(jobs, _journal(out, judge), finish)


def _flask_judging(
    data: Path, out: Path, judge: str, subset: str, verify: bool
) -> Judging:
    bench = flask.load_flask(data, subset=subset, verify=verify)
    answers_path = out / "flask_answers.jsonl"
    if not answers_path.exists():
        raise BenchmarkDataError(
            f"{answers_path} not found: run `attention-moa eval flask generate` "
            "into this directory first."
        )
    by_idx = {instance.idx: instance for instance in bench.instances}
    jobs: list[JudgeJob] = []
    for answer in read_jsonl(answers_path, "FLASK answers"):
        instance = by_idx[int(answer["question_id"])]

        def to_row(
            reply: BaseMessage, seconds: float, instance: flask.Instance = instance
        ) -> dict[str, Any]:
            return flask.review_record(instance, str(reply.text))

        jobs.append(
            JudgeJob(
                str(instance.idx),
                bench.judge_messages(instance, answer["text"]),
                to_row,
                flask.JUDGE_KWARGS,
            )
        )

    def finish(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
        ordered = [rows[job.key] for job in jobs if job.key in rows]
        write_jsonl(out / "flask_reviews.jsonl", ordered)
        return dict(flask.aggregate(ordered))

    return Judging(jobs, _journal(out, judge), finish)


def judging(
    benchmark: str,
    data: Path,
    out: Path,
    judge: str,
    name: str,
    *,
    subset: str = "full",
    verify: bool = True,
    gamed: GamedBaselines | None = None,
) -> Judging:
    """The judge calls a run in `out` needs, and how to score their rows.

    `gamed`: AlpacaEval's `df_gamed.csv`, for the length-controlled win rate.
    """
    if benchmark == "alpaca-eval":
        return _alpaca_judging(data, out, judge, gamed)
    if benchmark == "mt-bench":
        return _mt_bench_judging(data, out, judge, name)
    return _flask_judging(data, out, judge, subset, verify)


def default_judge(benchmark: str) -> str:
    """The paper-standard judge of a benchmark."""
    return {
        "alpaca-eval": alpaca_eval.DEFAULT_JUDGE,
        "mt-bench": mt_bench.DEFAULT_JUDGE,
        "flask": flask.DEFAULT_JUDGE,
    }[benchmark]
