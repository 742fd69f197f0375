"""The `attention-moa ask` command on the offline demo models."""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from attention_moa_graph.cli import main
from tests.helpers import run_python


def test_ask_with_no_models_uses_the_demo_and_shows_each_layer(capsys):
    assert main(["ask", "--demo", "Why is the sky blue?"]) == 0
    captured = capsys.readouterr()
    # Progress, notices and the closing line go to stderr; stdout is the answer.
    err = captured.err
    assert "offline demo models" in err and "openai:gpt-4.1-mini" in err
    for layer in (1, 2, 3):
        assert f"layer {layer}" in err
    assert "critiques: 9 done" in err
    assert "layer 3 done: 17 calls; stop (residual agent)" in err
    assert "3 layers (stopped early by the residual agent), 51 model calls" in err
    assert captured.out.startswith("[demo] Chair's summary of 3 answers")
    assert captured.out.count("\n") == 1 and "layer" not in captured.out


def test_a_stop_on_repeated_rounds_is_told_apart_from_the_residual_agents():
    from attention_moa_graph.cli.ask import _describe

    event = {"event": "layer_end", "layer": 2, "calls": 16}
    repeated = _describe({**event, "stopped": True, "converged": True})
    assert (
        repeated == "  layer 2 done: 16 calls; "
        "[yellow]stop (the round repeated the last)[/yellow]"
    )
    assert _describe({**event, "stopped": False, "converged": False}) == (
        "  layer 2 done: 16 calls"
    )
    agreed = _describe({**event, "stopped": True, "converged": False, "agreed": True})
    assert agreed.endswith("[yellow]stop (the drafts agreed)[/yellow]")


def test_ask_json_returns_the_layer_records(capsys):
    assert (
        main(["ask", "--demo", "hello", "--json", "-l", "2", "--no-self-attention"])
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["stop_reason"] == "max_layers"
    assert [r["layer"] for r in payload["layers"]] == [1, 2]
    assert sorted(payload["layers"][0]["drafts"]) == ["alpha", "beta", "gamma"]
    assert payload["usage"]["total"]["calls"] == (3 + 6 + 3 + 1) * 2 + 2
    assert "self_attention" not in payload["usage"]["by_role"]


def test_ask_forwards_the_critique_and_straggler_options(capsys):
    argv = ["ask", "--demo", "hello", "--json", "-l", "1"]
    argv += ["--critique-mode", "batched"]
    argv += ["--critique-deadline", "30", "--hedge-after", "30"]
    assert main([*argv, "--max-concurrent-calls", "2"]) == 0
    payload = json.loads(capsys.readouterr().out)
    # Three demo agents: one batched critique call each instead of nine.
    assert payload["usage"]["by_role"]["critique"]["calls"] == 3
    assert payload["usage"]["total"]["calls"] == 3 + 3 + 3 + 1
    assert payload["layers"][0]["late_critiques"] == []
    # Each option reaches the factory: a bad value is its error.
    for option, value, knob in (
        ("--max-concurrent-calls", "0", "max_concurrent_calls"),
        ("--hedge-after", "0", "hedge_after"),
        ("--critique-deadline", "-1", "critique_deadline"),
        ("--stage-deadline", "-1", "stage_deadline"),
    ):
        assert main(["ask", "--demo", "q", option, value]) == 2
        assert f"`{knob}` must be" in capsys.readouterr().err


def test_ask_with_named_demo_proposers_and_aggregator(capsys):
    code = main(
        ["ask", "q", "--json", "-p", "x=demo:one", "-p", "demo:two", "-a", "demo:lead"]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert sorted(payload["layers"][0]["drafts"]) == ["two", "x"]
    assert payload["final_answer"].startswith("[demo] Lead's")


def test_ask_reports_a_bad_configuration_as_an_error(capsys):
    assert main(["ask", "q", "-p", "demo:only"]) == 2
    assert "cross_attention=False" in capsys.readouterr().err


def test_the_installed_command_runs():
    exe = shutil.which("attention-moa", path=os.path.dirname(sys.executable))
    assert exe, "the console script is installed with the package"
    done = subprocess.run(
        [exe, "ask", "--demo", "What is MoA?", "--layers", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
    )
    assert done.returncode == 0, done.stderr
    assert "1 layer (ran every layer), 16 model calls" in done.stderr
    assert (
        done.stdout.startswith("[demo] Chair's summary") and "calls" not in done.stdout
    )


def test_runs_are_saved_and_a_thread_continues_the_conversation(capsys, tmp_path):
    db = tmp_path / "threads.sqlite"
    assert main(["ask", "--demo", "first?", "--json", "-l", "1", "--db", str(db)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert db.exists()
    assert (
        main(
            [
                "ask",
                "--demo",
                "second?",
                "--json",
                "-l",
                "1",
                "--db",
                str(db),
                "--thread",
                first["thread"],
            ]
        )
        == 0
    )
    second = json.loads(capsys.readouterr().out)
    assert second["thread"] == first["thread"]
    assert '"second?"' in second["final_answer"]


def test_resume_needs_a_thread_and_no_question(capsys):
    assert main(["ask", "--resume"]) == 2
    assert "--resume takes --thread" in capsys.readouterr().err
    assert main(["ask"]) == 2
    assert "give a question" in capsys.readouterr().err
    assert main(["ask", "--resume", "--thread", "nothing-here"]) == 2
    assert "no interrupted run to resume" in capsys.readouterr().err


def test_without_models_or_runtime_ask_says_why_and_uses_the_demo(
    capsys, monkeypatch, tmp_path
):
    import sys

    # An environment where `attention-moa local install` never ran.
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert main(["ask", "hi", "-l", "1"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "local model runtime is not installed" in err
    assert "attention-moa local install" in err and "offline demo models" in err


def test_markup_in_a_thread_id_or_model_name_is_printed_as_text(capsys, tmp_path):
    db = str(tmp_path / "t.sqlite")
    assert main(["ask", "--demo", "--db", db, "--thread", "[/x]", "-l", "1", "hi"]) == 0
    assert "thread [/x]" in capsys.readouterr().err
    assert main(["ask", "--no-db", "-p", "nope:[/x]", "-p", "nope:[/y]", "hi"]) == 2
    assert "cannot resolve model 'nope:[/x]'" in capsys.readouterr().err


def test_the_thread_database_is_private_and_a_bad_path_is_one_clear_line(
    tmp_path, capsys
):
    db = tmp_path / "state" / "threads.sqlite"
    assert main(["ask", "--demo", "hi", "-l", "1", "--db", str(db)]) == 0
    assert db.stat().st_mode & 0o777 == 0o600
    assert db.parent.stat().st_mode & 0o777 == 0o700
    capsys.readouterr()
    assert main(["ask", "--demo", "hi", "-l", "1", "--db", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "cannot use" in err and "--no-db" in err and "Traceback" not in err


def test_a_damaged_thread_database_is_one_clear_line(tmp_path, capsys):
    db = tmp_path / "threads.sqlite"
    db.write_bytes(b"not a database, just bytes\n" * 200)
    assert main(["ask", "--demo", "hi", "-l", "1", "--db", str(db)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"cannot use {db} for saved threads: it is not an SQLite database" in err
    assert "Move it aside" in err
    assert db.read_bytes().startswith(b"not a database")  # left as it was


def test_a_read_only_thread_database_is_one_clear_line(tmp_path, capsys):
    db = tmp_path / "threads.sqlite"
    assert main(["ask", "--demo", "hi", "-l", "1", "--db", str(db)]) == 0
    capsys.readouterr()
    # Root ignores file modes; the immutable attribute stops it too.
    root = os.geteuid() == 0
    if root:
        subprocess.run(["chattr", "+i", str(db)], check=True)
    else:
        db.chmod(0o400)
    try:
        assert main(["ask", "--demo", "again", "-l", "1", "--db", str(db)]) == 2
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(db)], check=True)
    err = " ".join(capsys.readouterr().err.split())  # the console wraps lines
    why = "Operation not permitted" if root else "Permission denied"
    assert f"cannot use {db} for saved threads: {why}" in err
    assert "--no-db" in err


def test_the_command_raises_the_collector_threshold_only_in_its_own_process():
    from attention_moa_graph.cli import GC_THRESHOLD

    script = (
        "import gc, sys\n"
        "from attention_moa_graph import cli\n"
        "cli.main = lambda: print(gc.get_threshold()[0]) or 0\n"
        "sys.exit(cli.run())\n"
    )
    done = run_python(script)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == GC_THRESHOLD != 700
    # Calling `main` (as an application or a test may) leaves the process's own.
    before = gc.get_threshold()
    assert main(["local", "status"]) in (0, 1)
    assert gc.get_threshold() == before


def test_a_run_that_is_not_saved_names_no_thread_to_resume(capsys):
    assert main(["ask", "--demo", "--no-db", "--thread", "t-1", "-l", "1", "hi"]) == 0
    err = capsys.readouterr().err
    assert "not saved (--no-db)" in err and "t-1" not in err
    assert main(["ask", "--demo", "--no-db", "-l", "1", "--json", "hi"]) == 0
    assert json.loads(capsys.readouterr().out)["thread"] is None


def test_serve_names_a_bad_or_taken_port_in_one_line(capsys):
    for port in ("99999", "-1", "http"):
        with pytest.raises(SystemExit) as exited:
            main(["serve", "--demo", "--port", port])
        assert exited.value.code == 2
        assert "is no port: give 1 to 65535" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--demo", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is in use" in err
    assert "Traceback" not in err and "Errno" not in err


def test_eval_generate_offers_only_the_flags_it_takes(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "mt-bench", "generate", "--help"])
    shown = capsys.readouterr().out
    assert "--proposer" in shown and "--base-url" in shown
    assert "--demo" not in shown and "--model-file" not in shown
    with pytest.raises(SystemExit) as exited:
        main(["eval", "mt-bench", "generate", "--demo", "--data", "x", "--out", "x"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --demo" in capsys.readouterr().err


def test_the_word_none_undoes_a_default_of_an_option_that_may_be_none():
    import argparse

    from attention_moa_graph.cli.ensemble import (
        LOCAL_DEFAULTS,
        Lineup,
        ensemble_options,
        lineup_options,
    )
    from attention_moa_graph.cli.flags import given_options

    parser = argparse.ArgumentParser(parents=[ensemble_options()])
    words = ["--agreement", "none", "--critique-peers", "None", "--token-budget", "9"]
    given = given_options(parser.parse_args(words))
    assert given == {"agreement": None, "critique_peers": None, "token_budget": 9}
    # Over the local lineup's defaults, as `ask` and `serve` build their graph.
    local = Lineup([], "demo:chair", notice=None, defaults=LOCAL_DEFAULTS)
    options = lineup_options(local, parser.parse_args(words))
    assert options.agreement is None and options.critique_peers is None
    assert options.token_budget == 9 and options.get("temperature") == 0.0
    assert lineup_options(local, parser.parse_args([])).agreement == 0.7
    with pytest.raises(SystemExit):
        parser.parse_args(["--max-layers", "none"])  # may not be None
