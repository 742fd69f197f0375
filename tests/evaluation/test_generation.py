"""Generation: official formats, multi-turn context, resume without repeated calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attention_moa_graph import MoAOptions
from attention_moa_graph.evaluation import harness
from attention_moa_graph.evaluation.datafiles import BenchmarkDataError
from attention_moa_graph.evaluation.generation import (
    claim_directory,
    local_backend,
    read_records,
    run_items,
    thread_key,
)
from attention_moa_graph.evaluation.systems import SystemSpec
from attention_moa_graph.testing import ScriptedChatModel
from tests.helpers import prompt_text

pytestmark = pytest.mark.anyio

SPECS = ("fake:alpha", "fake:beta")


def fakes(reply=None, latency=0.0) -> dict[str, ScriptedChatModel]:
    return {
        spec: ScriptedChatModel(model_name=spec[5:], reply=reply, latency=latency)
        for spec in SPECS
    }


def prompts(models: dict[str, ScriptedChatModel]) -> list[str]:
    return [call.prompt for model in models.values() for call in model.calls]


async def generate(benchmark, data, out, system, models, limit=3, concurrency=2):
    items = harness.work_items(benchmark, data, limit=limit)
    claim_directory(out, benchmark, system)
    async with local_backend(out, system, models) as backend:
        records = await run_items(backend, system, items, out, concurrency=concurrency)
    return harness.write_outputs(benchmark, data, out, system.name, records)


async def test_mt_bench_answers_in_fastchat_format_with_turn_two_seeing_turn_one(
    mt_bench_data: Path, tmp_path: Path
) -> None:
    models = fakes()
    system = SystemSpec("moa", SPECS, options=MoAOptions(max_layers=2), name="moa-fake")
    path = await generate("mt-bench", mt_bench_data, tmp_path, system, models)
    assert path == tmp_path / "model_answer" / "moa-fake.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["question_id"] for line in lines] == [81, 82, 83]
    for line in lines:
        assert set(line) == {
            "question_id",
            "answer_id",
            "model_id",
            "choices",
            "tstamp",
        }
        assert line["model_id"] == "moa-fake"
        assert len(line["choices"]) == 1 and len(line["choices"][0]["turns"]) == 2
    question = json.loads(
        (mt_bench_data / "question.jsonl").read_text().splitlines()[0]
    )
    first_answer = lines[0]["choices"][0]["turns"][0]
    turn_two = [
        call
        for model in models.values()
        for call in model.calls
        if question["turns"][1] in call.prompt
    ]
    assert turn_two and all(
        question["turns"][0] in c.prompt and first_answer in c.prompt for c in turn_two
    )
    # Each item carries FastChat's temperature for its category (writing: 0.7).
    items = harness.work_items("mt-bench", mt_bench_data, limit=3)
    assert [item.temperature for item in items] == [0.7, 0.7, 0.7]
    records = read_records(tmp_path)
    assert records["81"]["calls"] == 2 * (2 + 1)
    assert records["81"]["input_tokens"] > 0


async def test_alpaca_eval_outputs_keep_eval_set_order_and_fields(
    alpaca_data: Path, tmp_path: Path
) -> None:
    system = SystemSpec("single", SPECS[:1], name="solo")
    path = await generate(
        "alpaca-eval", alpaca_data, tmp_path, system, fakes(), limit=4
    )
    rows = json.loads(path.read_text())
    reference = json.loads(
        (alpaca_data / "gpt4_1106_preview_model_outputs.json").read_text()
    )
    assert [r["instruction"] for r in rows] == [r["instruction"] for r in reference[:4]]
    assert all(
        set(r) == {"instruction", "output", "generator", "dataset"} for r in rows
    )
    assert {r["generator"] for r in rows} == {"solo"}
    assert [r["dataset"] for r in rows] == [r["dataset"] for r in reference[:4]]


async def test_an_interrupted_run_resumes_without_repeating_a_call(
    mt_bench_data: Path, tmp_path: Path
) -> None:
    system = SystemSpec("attention-moa", SPECS, options=MoAOptions(max_layers=2))
    questions = [
        json.loads(line)
        for line in (mt_bench_data / "question.jsonl").read_text().splitlines()
    ]
    poison = questions[2]["turns"][1]  # the third item's second turn
    broken = {"on": True}

    def poisoned(messages) -> bool:
        text = "\n".join(str(m.text) for m in messages)
        return poison in text and "colleague" in text

    def reply(messages):
        if broken["on"] and poisoned(messages):
            raise ValueError("bad request")  # not retried: the run stops
        return f"reply {abs(hash(prompt_text(messages))) % 10**9}"

    # The bad calls fail once the rest of their stage has answered: a call
    # still in flight when a sibling fails is cancelled, and made again on
    # resume, as with any provider.
    first = fakes(reply, latency=lambda m: 0.2 if poisoned(m) else 0.0)
    with pytest.raises(Exception, match="bad request"):
        await generate("mt-bench", mt_bench_data, tmp_path, system, first, limit=4)
    done_before = set(read_records(tmp_path))
    assert "83" not in done_before
    broken["on"] = False
    second = fakes(reply)
    await generate("mt-bench", mt_bench_data, tmp_path, system, second, limit=4)
    paid_twice = set(prompts(first)) & set(prompts(second))
    failed = {p for p in paid_twice if poison in p and "colleague" in p}
    assert paid_twice == failed  # only the calls that had failed were made again
    assert set(read_records(tmp_path)) == {"81", "82", "83", "84"}
    # A third run finds everything done and calls nothing.
    third = fakes(reply)
    await generate("mt-bench", mt_bench_data, tmp_path, system, third, limit=4)
    assert prompts(third) == []


def test_threads_are_keyed_by_system_and_full_request() -> None:
    one = SystemSpec("moa", SPECS)
    renamed = SystemSpec("moa", SPECS, name="other name")
    deeper = SystemSpec("moa", SPECS, options=MoAOptions(max_layers=4))
    request = [{"role": "user", "content": "Q"}]
    assert thread_key(one, request) == thread_key(renamed, request)
    assert thread_key(one, request) != thread_key(deeper, request)
    assert thread_key(one, request) != thread_key(one, [*request, *request])


def test_a_run_directory_belongs_to_one_system(tmp_path: Path) -> None:
    claim_directory(tmp_path, "mt-bench", SystemSpec("moa", SPECS))
    claim_directory(tmp_path, "mt-bench", SystemSpec("moa", SPECS))
    with pytest.raises(BenchmarkDataError, match="new --out"):
        claim_directory(tmp_path, "mt-bench", SystemSpec("single", SPECS))
    with pytest.raises(BenchmarkDataError, match="new --out"):
        claim_directory(tmp_path, "flask", SystemSpec("moa", SPECS))


def test_unknown_system_and_empty_models_are_refused() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        SystemSpec("mixture", SPECS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one model"):
        SystemSpec("moa", ())


async def test_a_server_that_accepts_and_never_answers_fails_the_item_in_time(
    monkeypatch,
) -> None:
    import socket

    from attention_moa_graph import MoAError
    from attention_moa_graph.evaluation import generation

    monkeypatch.setattr(generation, "REQUEST_TIMEOUT", 0.5)
    with socket.socket() as silent:  # connections are accepted by the kernel
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        backend = generation.ServerBackend(url, "attention_moa", timeout=1.0)
        with pytest.raises(MoAError, match=r"did not answer .* within 0.5 s"):
            await backend.run_turn("t", [{"role": "user", "content": "hi"}], {})
