"""The command line as scripts see it: exit codes, one-line errors, JSON, no ANSI when piped."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bnnctl.cli import app
from bnnctl.cli.app import global_options_first
from helpers import default_sigint

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def _assert_one_line_error(result, code=2, match=""):
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert match in lines[0]


def _done_folders(runs_dir: Path):
    return list(runs_dir.glob("train/*/DONE"))


def test_help_lists_commands_config_groups_and_their_options():
    top = invoke("--help")
    assert top.exit_code == 0
    for command in ("train", "eval", "runs", "bench"):
        assert command in top.stdout
    result = invoke("train", "--help")
    assert result.exit_code == 0
    from bnnctl.config import group_options

    for group in ("model", "data", "binarize", "experiment", "debug"):  # every option file, whatever is added
        assert f"{group}: {', '.join(group_options(group))}" in " ".join(result.stdout.split())


def test_train_prints_a_json_summary_and_writes_a_done_run(runs_dir):
    result = invoke("train", "debug=tiny", f"runs_dir={runs_dir}", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 2 and 0 <= summary["final_test_acc"] <= 1
    assert (Path(summary["run_dir"]) / "DONE").is_file()
    assert "\x1b[" not in result.stdout + result.stderr  # not a terminal: no colour, no live bars
    assert "epoch 2" in result.stderr  # plain progress lines instead


def test_train_prints_a_table_without_json(runs_dir):
    result = invoke("train", "debug=tiny", f"runs_dir={runs_dir}", "train.epochs=1")
    assert result.exit_code == 0
    assert "test_acc_at_best_val" in result.stdout and "final_test_acc" in result.stdout


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["model=nope"], "unknown option 'nope' for config group 'model'"),
        (["train.nope=1"], "train.nope"),
        (["train.epochs=abc"], "train.epochs"),
        (["train.epochs=-2"], "train.epochs must be >= 1"),
        (["data=mnist", "data.download=false"], "dataset 'mnist' not found"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_leaves_no_done_run(runs_dir, tmp_path, overrides, match):
    extra = [f"data.root={tmp_path / 'empty'}"] if "data=mnist" in overrides else []
    result = invoke("train", "debug=tiny", f"runs_dir={runs_dir}", *overrides, *extra)
    _assert_one_line_error(result, 2, match)
    assert _done_folders(runs_dir) == []
    assert list(runs_dir.glob("train/*")) == []  # nothing was trained: no folder left behind


def test_unwritable_runs_folder_exits_2(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = invoke("train", "debug=tiny", f"runs_dir={blocker / 'runs'}")
    _assert_one_line_error(result, 2, "is not writable")


def test_eval_prints_json_and_fails_cleanly_on_bad_folders(runs_dir, tmp_path):
    trained = json.loads(invoke("train", "debug=tiny", f"runs_dir={runs_dir}", "--json").stdout)
    result = invoke("eval", trained["run_dir"], "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["test_acc"] == trained["final_test_acc"]

    _assert_one_line_error(invoke("eval", trained["run_dir"], "--device", "tpu"), 2, "unknown device 'tpu'")
    _assert_one_line_error(invoke("eval", str(tmp_path / "nowhere")), 2, "does not exist")
    _assert_one_line_error(invoke("eval", str(tmp_path)), 2, "not a bnnctl run folder")
    checkpoint = Path(trained["run_dir"]) / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    _assert_one_line_error(invoke("eval", trained["run_dir"]), 2, "corrupt")
    checkpoint.unlink()
    _assert_one_line_error(invoke("eval", trained["run_dir"]), 2, "has no checkpoint.pt")


def test_runs_ls_lists_runs_as_json_and_writes_tables(runs_dir, tmp_path):
    invoke("train", "debug=tiny", f"runs_dir={runs_dir}", "train.epochs=1")
    result = invoke("runs", "ls", "--runs-dir", str(runs_dir), "--json", "--write", str(tmp_path / "tables"))
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert len(rows) == 1 and rows[0]["status"] == "done" and rows[0]["model"] == "blu_mlp"
    assert rows[0]["overrides"] == f"debug=tiny runs_dir={runs_dir} train.epochs=1"
    assert (tmp_path / "tables" / "runs.csv").read_text().startswith("run,status,")
    assert "| run" in (tmp_path / "tables" / "runs.md").read_text()


def _pretend_cpu(monkeypatch, vnni: bool, native_bf16: bool) -> None:
    """Make ``nn.lowp`` (and the benches reading it) see a CPU with or without VNNI and native bf16."""
    import bnnctl.nn.lowp as lowp

    monkeypatch.setattr(lowp, "cpu_has_vnni", lambda: vnni)
    monkeypatch.setattr(lowp, "cpu_has_native_bf16", lambda: native_bf16)


def _bench_train(*extra: str):
    args = ("bench", "train", "--width", "64", "--rounds", "1", "--warmup", "1", "--no-compile", *extra)
    return invoke(*args)


def test_bench_reports_every_variant_at_every_batch_size_with_its_ratio(monkeypatch):
    _pretend_cpu(monkeypatch, vnni=True, native_bf16=True)  # as on an AVX-512 VNNI + BF16 CPU
    result = _bench_train("--batch-sizes", "8,16", "--json")
    assert result.exit_code == 0, result.stderr
    figures = json.loads(result.stdout)
    rows = {(r["variant"], r["batch_size"]): r for r in figures["rows"]}
    assert set(rows) == {(v, b) for v in ("mlp_float", "mlp_float_bf16", "bnn_fp32", "bnn_exact") for b in (8, 16)}
    assert figures["binary_params"] == 784 * 64 + 2 * 64 * 64 + 64 * 10
    for (_, batch), row in rows.items():
        assert row["step_ms"] > 0 and row["samples_per_s"] == pytest.approx(batch * 1000 / row["step_ms"])
        assert row["vs_float32_mlp"] == pytest.approx(row["step_ms"] / rows[("mlp_float", batch)]["step_ms"])
    assert rows[("bnn_fp32", 8)]["binary_matmul"] == "fp32" and rows[("bnn_exact", 8)]["binary_matmul"] == "int8"
    assert figures["skipped"] == {}


def test_bench_leaves_out_what_the_cpu_emulates_and_says_why(monkeypatch):
    _pretend_cpu(monkeypatch, vnni=False, native_bf16=False)  # an AVX2 CPU
    figures = json.loads(_bench_train("--batch-sizes", "8", "--json").stdout)
    assert {r["variant"] for r in figures["rows"]} == {"mlp_float", "bnn_fp32"}
    assert set(figures["skipped"]) == {"mlp_float_bf16", "bnn_exact"}
    assert "no AVX-512 BF16" in figures["skipped"]["mlp_float_bf16"]
    assert "missing: VNNI, native bf16" in figures["skipped"]["bnn_exact"]
    shown = _bench_train("--batch-sizes", "8")
    assert shown.exit_code == 0 and "skipped mlp_float_bf16: bf16 is emulated" in shown.stderr + shown.stdout


def test_ctrl_c_exits_130_keeps_finished_epochs_and_never_marks_done(runs_dir):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bnnctl", "train", "debug=tiny", f"runs_dir={runs_dir}", "train.epochs=100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=default_sigint,
    )
    deadline = time.time() + 120
    metrics = None
    while time.time() < deadline:
        found = list(runs_dir.glob("train/*/metrics.jsonl"))
        if found and found[0].read_text().count("\n") >= 1:
            metrics = found[0]
            break
        time.sleep(0.2)
    assert metrics is not None, "training never finished an epoch"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not (metrics.parent / "DONE").exists()
    assert all(json.loads(line)["kind"] == "epoch" for line in metrics.read_text().splitlines())


def test_a_diverging_run_fails_in_one_line_and_is_never_marked_done(runs_dir):
    """A finite but absurd step size: the float MLP's weights overflow and the loss is NaN after epoch 1."""
    result = invoke("train", "debug=tiny", "model=mlp_float", "optimizer.lr=1e30", f"runs_dir={runs_dir}")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: training diverged at epoch 1: the training loss is nan"]
    assert result.stderr.strip().splitlines()[-1] == errors[0]  # the epoch lines come first
    (run,) = runs_dir.glob("train/*")
    assert (run / "error.txt").is_file() and not (run / "DONE").exists() and not (run / "checkpoint.pt").exists()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1  # the epoch that diverged is kept
    listing = json.loads(invoke("runs", "ls", "--runs-dir", str(runs_dir), "--json").stdout)
    assert [r["status"] for r in listing] == ["failed"]


@pytest.mark.parametrize(
    "args, match",
    [
        (
            ("train", "debug=tiny", "model.width=100000000"),
            "model.width / model.depth: the model has 20,000,079,700,000,010",
        ),
        (("bench", "train", "--batch-sizes", "0"), "--batch-sizes: expected positive integers"),
        (("bench", "train", "--rounds", "0"), "--rounds must be >= 1, got 0"),
        (("bench", "gemm", "--rounds", "0"), "--rounds must be >= 1, got 0"),
        (("bench", "infer", "nowhere", "--rounds", "0"), "--rounds must be >= 1, got 0"),
    ],
)
def test_numbers_that_would_reach_torch_unchecked_are_one_line_errors(args, match, runs_dir):
    result = invoke(*args, *([f"runs_dir={runs_dir}"] if args[0] == "train" else []))
    _assert_one_line_error(result, code=2, match=match)
    assert not list(runs_dir.glob("train/*"))  # no run folder left behind


def test_dash_h_is_help_on_every_command_group():
    for args in (["-h"], ["train", "-h"], ["ablate", "grid", "-h"], ["geometry", "-h"], ["runs", "ls", "-h"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage:" in result.stdout, args


def test_dash_capital_v_prints_the_versions_without_importing_torch():
    code = (
        "import sys\nfrom bnnctl.cli import main\nsys.argv = ['bnnctl', '-V']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(str('torch' in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("bnnctl ") and "torch " in done.stdout and "numba " in done.stdout
    assert done.stderr == "False"  # torch is not imported: the answer comes at once


def test_global_quiet_flag_works_after_the_subcommand_too(tmp_path):
    args = ["train", "debug=tiny", "train.epochs=1", f"runs_dir={tmp_path}"]
    after = runner.invoke(app, [*args, "-q"])
    assert after.exit_code == 0, after.stderr
    assert after.stderr == "" and "final_test_acc" in after.stdout
    assert global_options_first(["train", "x=1", "--quiet", "--", "-q"]) == ["--quiet", "train", "x=1", "--", "-q"]
