"""The evaluation command line end to end: demo ensembles, a loopback judge.

Each command runs in its own process, as a user would run it; the judge is
the fake OpenAI-compatible server (its `judge-*` models give fixed verdicts)
reached through the real langchain-openai client.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from attention_moa_graph.evaluation import alpaca_eval
from attention_moa_graph.testing.fake_server import server_process
from tests.evaluation.test_length_control import write_gamed
from tests.helpers import run_eval

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
# Every test runs the command in processes of its own.
pytestmark = pytest.mark.slow

DEMO = ["-p", "demo:alpha", "-p", "demo:beta", "-a", "demo:chair"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    done = run_eval(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def judge_url():
    with server_process() as url:
        yield url


def test_mt_bench_generate_judge_and_report_two_systems(
    tmp_path: Path, judge_url: str
) -> None:
    data = str(SHARED / "mt_bench")
    runs = {
        "attention-moa": ("attention-moa", "judge-rating-8"),
        "moa": ("moa", "judge-rating-6"),
    }
    for name, (system, judge) in runs.items():
        out = str(tmp_path / name)
        cli(
            "mt-bench",
            "generate",
            "--data",
            data,
            "--out",
            out,
            "--system",
            system,
            "--limit",
            "3",
            "--quiet",
            *DEMO,
        )
        judged = cli(
            "mt-bench",
            "judge",
            "--data",
            data,
            "--out",
            out,
            "--judge",
            judge,
            "--judge-base-url",
            judge_url,
            "--quiet",
        )
        scores = json.loads(judged.stdout)
        expected = float(judge.rsplit("-", 1)[1])
        assert scores["score"] == scores["turn_1"] == scores["turn_2"] == expected
        assert scores["n_scored"] == 6 and scores["n_failed"] == 0
        judgments = (
            tmp_path / name / "model_judgment" / f"{judge}_single.jsonl"
        ).read_text()
        rows = [json.loads(line) for line in judgments.splitlines()]
        assert {(r["question_id"], r["turn"]) for r in rows} == {
            (q, t) for q in (81, 82, 83) for t in (1, 2)
        }
        assert {r["judge"][1] for r in rows} == {"single-v1", "single-v1-multi-turn"}
    report = tmp_path / "report"
    cli(
        "mt-bench",
        "report",
        str(tmp_path / "attention-moa"),
        str(tmp_path / "moa"),
        "--out",
        str(report),
    )
    table = (report / "report.md").read_text()
    assert "| attention-moa | attention-moa | 8.00 |" in table
    assert "| moa | moa | 6.00 |" in table
    saved = json.loads((report / "report.json").read_text())
    calls = {r["system"]["name"]: r["per_item"]["calls"] for r in saved["runs"]}
    # Demo models: Attention-MoA stops early at layer 3 (2 agents: 9, then
    # 9 + verdict + residual, then 9 + the verdict that stops: 30 calls per
    # turn); classic MoA makes 2 * 2 + 1 per turn.
    assert calls == {"attention-moa": 2 * 30.0, "moa": 2 * 5.0}
    for plot in ("cost_vs_score.png", "mt_bench_categories.png"):
        assert (report / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_depth_judges_each_layer_output_once(tmp_path: Path, judge_url: str) -> None:
    data = str(SHARED / "mt_bench")
    out = tmp_path / "run"
    cli(
        "mt-bench", "generate", "--data", data, "--out", str(out),
        "--limit", "2", "--quiet", *DEMO,
    )  # fmt: skip
    # Demo layer outputs per turn: 1 a summary, 2 a residual "synthesis",
    # 3 a summary again (the verdict stops the loop there, so it is the final
    # answer). The judge rates an answer 9 when it holds "synthesis", else 3.
    judged = cli(
        "mt-bench", "judge", "--data", data, "--out", str(out),
        "--judge", "judge-likes-synthesis", "--judge-base-url", judge_url,
        "--depth", "--quiet",
    )  # fmt: skip
    shown = json.loads(judged.stdout)
    assert shown["score"] == 3.0
    assert shown["depth"] == {"1": 3.0, "2": 9.0, "3": 3.0}
    saved = json.loads((out / "scores.json").read_text())
    assert saved["depth"] == shown["depth"]
    # Layer 3 gave the final answers again: only layers 1 and 2 were judged anew.
    assert sorted(p.name for p in (out / "depth").iterdir()) == ["layer-1", "layer-2"]
    journal = out / "depth" / "layer-2" / "judge_journal-judge-likes-synthesis.jsonl"
    assert len(journal.read_text().splitlines()) == 2 * 2
    answers = out / "depth" / "layer-2" / "model_answer" / "attention-moa.jsonl"
    turns = [json.loads(line)["choices"][0]["turns"] for line in answers.open()]
    assert all("synthesis of 2 rounds" in t for pair in turns for t in pair)

    report = tmp_path / "report"
    cli("mt-bench", "report", str(out), "--out", str(report))
    table = (report / "report.md").read_text()
    assert "| attention-moa | 3.00 | 9.00 | 3.00 |" in table
    assert (report / "depth_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_depth_refuses_a_run_without_layers(tmp_path: Path, judge_url: str) -> None:
    data = str(SHARED / "mt_bench")
    out = str(tmp_path / "single")
    cli(
        "mt-bench", "generate", "--data", data, "--out", out, "--system", "single",
        "-p", "demo:alpha", "--limit", "1", "--quiet",
    )  # fmt: skip
    done = run_eval(
        "mt-bench", "judge", "--data", data, "--out", out, "--judge", "judge-rating-5",
        "--judge-base-url", judge_url, "--depth", "--quiet",
    )  # fmt: skip
    assert done.returncode == 2
    assert "only attention-moa runs record" in done.stderr
    assert not (tmp_path / "single" / "model_judgment").exists()  # refused first


def test_alpaca_eval_judge_that_always_picks_output_two(
    tmp_path: Path, judge_url: str
) -> None:
    data = SHARED / "alpaca_eval"
    out = tmp_path / "single"
    cli(
        "alpaca-eval",
        "generate",
        "--data",
        str(data),
        "--out",
        str(out),
        "--system",
        "single",
        "-p",
        "demo:alpha",
        "--limit",
        "12",
        "--quiet",
    )
    judged = cli(
        "alpaca-eval",
        "judge",
        "--data",
        str(data),
        "--out",
        str(out),
        "--judge",
        "judge-says-M",
        "--judge-base-url",
        judge_url,
        "--df-gamed",
        str(write_gamed(tmp_path / "df_gamed.csv", 1.3)),
        "--quiet",
    )
    scores = json.loads(judged.stdout)
    # The length-controlled rate is fitted, and flagged as a 12-item subset.
    assert 0 < scores["length_controlled_winrate"] < 100
    assert "12 of 805 instructions" in scores["length_controlled_note"]
    instructions = [
        r["instruction"] for r in json.loads((out / "model_outputs.json").read_text())
    ]
    shown_second = sum(not alpaca_eval.is_switched(i) for i in instructions)
    assert scores["n_total"] == 12
    assert scores["win_rate"] == pytest.approx(100 * shown_second / 12)
    annotations = json.loads((out / "annotations.json").read_text())
    assert all(a["generator_1"] == "gpt4_1106_preview" for a in annotations)
    again = json.loads(
        cli("alpaca-eval", "score", str(out / "annotations.json")).stdout
    )
    assert again["win_rate"] == scores["win_rate"]


def test_score_prints_the_leaderboard_columns_of_an_annotations_file() -> None:
    path = (
        SHARED
        / "alpaca_eval"
        / "fixtures"
        / ("claude-2.1_weighted_alpaca_eval_gpt4_turbo_annotations.json")
    )
    scores = json.loads(cli("alpaca-eval", "score", str(path)).stdout)
    assert {
        "win_rate",
        "standard_error",
        "n_wins",
        "n_wins_base",
        "n_draws",
        "n_total",
        "discrete_win_rate",
        "avg_length",
    } <= set(scores)
    assert scores["win_rate"] == 15.733506736409938
    assert (scores["n_wins"], scores["n_wins_base"], scores["n_draws"]) == (115, 688, 2)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["-p", "demo:alpha"], ["question.jsonl", "FastChat"]),
        ([], ["needs at least one model", "-p openai:gpt-4.1-mini"]),
    ],
)
def test_bad_input_gives_a_clear_error_and_status_2(
    tmp_path: Path, extra: list[str], expected: list[str]
) -> None:
    done = run_eval(
        "mt-bench", "generate", "--data", str(tmp_path), "--out",
        str(tmp_path / "out"), "--quiet", *extra,
    )  # fmt: skip
    assert done.returncode == 2
    for text in expected:
        assert text in done.stderr


def test_ablate_runs_each_variant_into_its_own_directory(tmp_path: Path) -> None:
    cli(
        "mt-bench",
        "ablate",
        "--data",
        str(SHARED / "mt_bench"),
        "--out",
        str(tmp_path),
        "--limit",
        "1",
        "--quiet",
        "--no-early-stopping",
        *DEMO,
    )
    calls = {}
    for variant in (
        "attention-moa",
        "no-cross-attention",
        "no-self-attention",
        "no-attention",
        "no-residual",
        "no-early-stopping",
    ):
        run = json.loads((tmp_path / variant / "run.json").read_text())
        assert run["system"]["name"] == variant
        record = json.loads((tmp_path / variant / "records.jsonl").read_text())
        calls[variant] = record["calls"] // 2  # per turn
    # N=2 agents, 3 layers, every layer run: drafts 2, critiques 2x2, refines 2,
    # summary 1, residual from layer 2: 9 + 10 + 10.
    assert calls["attention-moa"] == calls["no-early-stopping"] == 29
    assert calls["no-cross-attention"] == 29 - 3 * 2
    assert calls["no-self-attention"] == 29 - 3 * 2
    assert calls["no-attention"] == 3 * (2 + 1) + 2  # drafts, summary; residuals
    assert calls["no-residual"] == 29 - 2


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again: nothing listens


def _refused(args: list[str], says: str) -> None:
    done = run_eval(*args)
    assert done.returncode == 2, done.stderr[-2000:]
    assert says in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_unusable_outputs_and_servers_are_one_clear_line(tmp_path: Path) -> None:
    data = str(SHARED / "mt_bench")
    generate = ["mt-bench", "generate", "--data", data, "--quiet", "--limit", "1"]
    (tmp_path / "a-file").write_text("")
    _refused(
        [*generate, "--out", str(tmp_path / "a-file"), *DEMO],
        "is a file; give a directory",
    )
    _refused(
        [*generate, "--out", str(tmp_path / "remote"), *DEMO, "--server",
         f"http://127.0.0.1:{_closed_port()}"],
        "cannot reach the LangGraph Server",
    )  # fmt: skip
    _refused(
        ["mt-bench", "judge", "--data", data, "--quiet", "--out",
         str(tmp_path / "empty"), "--judge", "demo:x"],
        "holds no generated run",
    )  # fmt: skip
    # A run whose saved steps were damaged: its finished answers are kept.
    run = tmp_path / "damaged"
    cli(*generate, "--out", str(run), *DEMO)
    (run / "checkpoints.sqlite").write_bytes(b"garbage" * 100)
    (run / "records.jsonl").write_text("")
    _refused([*generate, "--out", str(run), *DEMO], "checkpoints.sqlite cannot be used")
    (run / "run.json").write_text("{")
    _refused([*generate, "--out", str(run), *DEMO], "cannot read")


def test_mt_bench_sends_what_fastchat_sends(tmp_path: Path, fake_server) -> None:
    data = str(SHARED / "mt_bench")
    out = str(tmp_path / "single")
    cli(
        "mt-bench", "generate", "--data", data, "--out", out, "--quiet",
        "--limit", "1", "--system", "single", "-p", "gpt-x",
        "--base-url", fake_server.base_url,
    )  # fmt: skip
    system = {"role": "system", "content": "You are a helpful assistant."}
    first, second = fake_server.log
    assert first.messages[0] == system and first.messages[1]["role"] == "user"
    assert second.messages[0] == system and len(second.messages) == 4
    assert {r.params.get("max_tokens") for r in fake_server.log} == {1024}
    fake_server.log.clear()

    cli(
        "mt-bench", "judge", "--data", data, "--out", out, "--quiet",
        "--judge", "judge-rating-7", "--judge-base-url", fake_server.base_url,
    )  # fmt: skip
    assert len(fake_server.log) == 2  # one judgment per turn
    for request in fake_server.log:
        # The classic field: OpenAI-compatible judges may lack the newer one.
        assert request.params.get("max_tokens") == 2048
        assert "max_completion_tokens" not in request.params


def test_a_judgment_file_with_several_models_scores_each(tmp_path: Path) -> None:
    rows = [
        {"question_id": q, "model": model, "judge": ["gpt-4", "single-v1"],
         "judgment": "...", "score": score, "turn": turn}
        for model, scores in (("vicuna", (4, 6, -1, 5)), ("llama", (8, 9, 10, 7)))
        for (q, turn), score in zip(
            [(81, 1), (81, 2), (82, 1), (82, 2)], scores, strict=True
        )
    ]  # fmt: skip
    judged = tmp_path / "gpt-4_single.jsonl"
    judged.write_text("".join(json.dumps(r) + "\n" for r in rows))
    scores = json.loads(cli("mt-bench", "score", str(judged)).stdout)
    assert list(scores["by_model"]) == ["llama", "vicuna"]  # best first
    assert scores["by_model"]["llama"]["score"] == 8.5
    vicuna = scores["by_model"]["vicuna"]
    assert vicuna["score"] == 5.0 and vicuna["n_failed"] == 1
    assert vicuna["turn_1"] == 4.0 and vicuna["turn_2"] == 5.5
    # One model: its scores, as before.
    judged.write_text("".join(json.dumps(r) + "\n" for r in rows[4:]))
    assert json.loads(cli("mt-bench", "score", str(judged)).stdout)["score"] == 8.5
    judged.write_text(json.dumps({"model": "x", "turn": 1}) + "\n")
    _refused(["mt-bench", "score", str(judged)], "judgment 1 needs a numeric score")


@pytest.mark.parametrize("suite", ["mt-bench", "alpaca-eval"])
def test_a_judging_in_which_every_judgment_failed_exits_non_zero(
    tmp_path: Path, judge_url: str, suite: str
) -> None:
    data = str(SHARED / suite.replace("-", "_"))
    out = str(tmp_path / "run")
    cli(
        suite, "generate", "--data", data, "--out", out, "--system", "single",
        "-p", "demo:alpha", "--limit", "2", "--quiet",
    )  # fmt: skip
    # A model that answers, but never with a rating or a preference.
    done = run_eval(
        suite, "judge", "--data", data, "--out", out, "--judge", "chatty",
        "--judge-base-url", judge_url, "--quiet",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    assert "no judgment could be scored" in " ".join(done.stderr.split())
