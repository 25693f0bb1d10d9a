"""Mid-run resume, SIGTERM and preemption: a cut-off run continues to the numbers an uninterrupted run gives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bnnctl.cli import app
from bnnctl.config.load import compose_train, load_grid, load_launcher
from bnnctl.errors import RunError
from bnnctl.runs import RESUME, Run, create_run
from bnnctl.sweep import CellTask, EpochWatch, GridObserver, plan_grid, run_cell, run_grid
from bnnctl.sweep.launchers import ThreadedCall
from bnnctl.training import TrainObserver, train_into
from bnnctl.training.resume import can_resume
from helpers import default_sigint

runner = CliRunner()
# Every random stream a step draws from: stochastic sign, dropout, augmentation, shuffling; plus periodic validation.
RANDOM = ["debug=tiny", "binarize=stochastic", "model.dropout=0.2", "data.augment=true", "train.eval_every=7"]
TIMES = ("epoch_time_s", "eval_time_s", "samples_per_s")


class CutAt(TrainObserver):
    """Raise KeyboardInterrupt (as Ctrl-C would) at step ``step`` of 0-based epoch ``epoch``."""

    def __init__(self, epoch: int, step: int = 1):
        self.epoch, self.step = epoch, step

    def on_step(self, *, epoch, step, loss):
        if epoch == self.epoch and step == self.step:
            raise KeyboardInterrupt


def without_times(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMES} for r in records]


def weights(run: Run) -> dict[str, torch.Tensor]:
    return run.load_checkpoint()["model"]


def test_a_resumed_run_equals_an_uninterrupted_one_bit_for_bit(tmp_path):
    overrides = [*RANDOM, "train.epochs=4"]
    cfg = compose_train(overrides)
    full = create_run(tmp_path, "train", "full", cfg)
    train_into(full, cfg, overrides)

    cut = create_run(tmp_path, "train", "cut", cfg)
    with pytest.raises(KeyboardInterrupt):
        train_into(cut, cfg, overrides, CutAt(epoch=2, step=10))  # after periodic validation inside epoch 3
    assert (cut.path / RESUME).is_file() and not cut.done
    assert {r["epoch"] for r in cut.metrics()} == {1, 2, 3}  # epoch 3's iteration records were logged
    summary = train_into(cut, cfg, overrides, resume=True)

    assert summary["resumed_from_epoch"] == 2
    assert without_times(cut.metrics()) == without_times(full.metrics())  # epoch 3's partial records are gone
    assert all(torch.equal(a, b) for a, b in zip(weights(full).values(), weights(cut).values(), strict=True))
    assert not (cut.path / RESUME).exists()  # a finished run keeps only its checkpoint


def test_a_run_resumed_on_a_cpu_with_other_products_warns_and_says_which_epochs_used_which(tmp_path, monkeypatch):
    import bnnctl.nn.lowp as lowp

    cfg = compose_train(["debug=tiny", "train.epochs=3"])  # train.binary_matmul=auto
    run = create_run(tmp_path, "train", "moved", cfg)
    monkeypatch.setattr(lowp, "cpu_has_vnni", lambda: True)  # an AVX-512 VNNI + BF16 machine: int8
    monkeypatch.setattr(lowp, "cpu_has_native_bf16", lambda: True)
    with pytest.raises(KeyboardInterrupt):
        train_into(run, cfg, [], CutAt(epoch=1))
    monkeypatch.setattr(lowp, "cpu_has_vnni", lambda: False)  # resumed on an AVX2 one: fp32
    with pytest.warns(RuntimeWarning, match="resumes with fp32 products; its epochs 1-1 used int8"):
        summary = train_into(run, cfg, [], resume=True)
    assert summary["binary_matmul"] == "int8 (epoch 1), fp32 (epochs 2-3)"
    assert [r["binary_matmul"] for r in run.metrics() if r["kind"] == "epoch"] == ["int8", "fp32", "fp32"]


def test_a_resume_state_of_another_config_is_refused(tmp_path):
    cfg = compose_train(["debug=tiny", "train.epochs=3"])
    run = create_run(tmp_path, "train", "cut", cfg)
    with pytest.raises(KeyboardInterrupt):
        train_into(run, cfg, [], CutAt(epoch=1))
    other = compose_train(["debug=tiny", "train.epochs=3", "model.width=32"])
    assert can_resume(run, cfg) and not can_resume(run, other)
    with pytest.raises(RunError, match="saved by a different config"):
        train_into(run, other, [], resume=True)


def _train_cli(runs: Path, *extra: str) -> list[str]:
    # 40000 examples: about two seconds an epoch here, long enough to be killed inside one.
    return [sys.executable, "-m", "bnnctl", "train", "debug=tiny", "train.epochs=5", "data.synthetic_train=40000",
            "train.eval_every=300", f"runs_dir={runs}", *extra]  # fmt: skip


def _wait_for(condition, timeout: float = 240, what: str = "") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _metrics(runs: Path) -> Path | None:
    found = list(runs.glob("train/*/metrics.jsonl"))
    return found[0] if found else None


def _in_epoch(runs: Path, epoch: int) -> bool:
    """An iteration record of ``epoch`` is logged: the state after epoch - 1 is saved, and ``epoch`` is under way."""
    path = _metrics(runs)
    return path is not None and any(
        json.loads(line).get("kind") == "iter" and json.loads(line)["epoch"] == epoch
        for line in path.read_text().splitlines()
        if line.endswith("}")
    )


def test_kill_9_during_epoch_4_then_resume_retrains_nothing_finished_and_matches_a_clean_run(tmp_path):
    """The issue's check: epochs 1-3 are not retrained, and the final metrics equal an uninterrupted run's."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cut_runs = tmp_path / "cut"
    proc = subprocess.Popen(_train_cli(cut_runs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _wait_for(lambda: _in_epoch(cut_runs, 4), what="epoch 4")
    proc.kill()
    proc.wait(timeout=30)
    run = _metrics(cut_runs).parent
    epochs_1_to_3 = [line for line in (run / "metrics.jsonl").read_text().splitlines() if '"epoch": 4' not in line]
    assert not (run / "DONE").exists() and (run / RESUME).is_file()

    resumed = subprocess.run(
        [sys.executable, "-m", "bnnctl", "train", "--resume", str(run), "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after epoch 3" in resumed.stderr
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert lines[: len(epochs_1_to_3)] == epochs_1_to_3  # the finished epochs, byte for byte: not retrained
    full = subprocess.run(_train_cli(tmp_path / "full", "--json"), capture_output=True, text=True, env=env, timeout=300)
    assert full.returncode == 0, full.stderr
    a, b = json.loads(full.stdout), json.loads(resumed.stdout)
    assert b["resumed_from_epoch"] == 3 and b["epochs"] == 5
    for key in ("final_test_acc", "final_val_acc", "final_train_loss", "best_val_acc", "best_epoch"):
        assert a[key] == b[key], key
    full_run = Path(a["run_dir"])
    assert without_times(Run(full_run).metrics()) == without_times(Run(run).metrics())


def test_sigterm_ends_train_with_143_one_line_and_the_resume_command(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        _train_cli(runs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint
    )
    _wait_for(lambda: _in_epoch(runs, 2), what="epoch 2")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    last = stderr.strip().splitlines()[-1]
    run = _metrics(runs).parent
    assert last == (
        f"terminated (SIGTERM): finished epochs are kept in {run}; continue with: bnnctl train --resume {run}"
    )
    assert "Traceback" not in stderr and not (run / "DONE").exists() and (run / RESUME).is_file()


def test_sigterm_stops_a_grid_with_143_and_a_rerun_continues_the_cut_cell(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text(
        "name: g\nfixed: [debug=tiny, train.epochs=3, data.synthetic_train=20000]\n"
        "axes:\n  - {key: train.weight_clip, values: [false, true], short: W}\nseeds: [0]\n"
    )
    runs = tmp_path / "runs"
    cli = [sys.executable, "-m", "bnnctl", "ablate", "grid", str(grid), f"runs_dir={runs}", "launcher.workers=1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _wait_for(lambda: any(runs.glob("ablate/g/cells/*/seed-0/resume.pt")), what="a cell's first epoch")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1].startswith("terminated (SIGTERM): finished cells are kept")
    assert "Traceback" not in stderr

    rerun = subprocess.run([*cli, "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    summaries = [json.loads(p.read_text()) for p in runs.glob("ablate/g/cells/*/seed-0/summary.json")]
    assert len(summaries) == 2 and any(s.get("resumed_from_epoch") for s in summaries)


def _cut_cell(tmp_path: Path) -> tuple[CellTask, Path]:
    """The first task of a 2-cell grid, cut off in its epoch 2, and a grid folder of the same grid uninterrupted."""
    grid_file = tmp_path / "g.yaml"
    grid_file.write_text(
        "name: g\nfixed: [debug=tiny, train.epochs=3, binarize=stochastic, model.dropout=0.2]\n"
        "axes:\n  - {key: train.weight_clip, values: [false, true], short: W}\nseeds: [0]\n"
    )
    plan = plan_grid(load_grid(str(grid_file)), [f"runs_dir={tmp_path / 'cut'}"])
    task = plan.tasks[0]
    run = Run(Path(task.run_dir))
    run.path.mkdir(parents=True)
    with pytest.raises(KeyboardInterrupt):
        train_into(run, task.cfg, task.overrides, CutAt(epoch=1))
    clean = plan_grid(load_grid(str(grid_file)), [f"runs_dir={tmp_path / 'clean'}"])
    assert run_grid(clean, load_launcher(["launcher=inline"])).ok
    return task, Path(clean.tasks[0].run_dir)


def test_a_grid_continues_a_cut_cell_from_its_last_epoch(tmp_path):
    task, clean = _cut_cell(tmp_path)
    outcome = run_cell(task)
    assert outcome.outcome == "trained" and outcome.summary["resumed_from_epoch"] == 1
    assert without_times(Run(Path(task.run_dir)).metrics()) == without_times(Run(clean).metrics())


def test_submitit_requeues_the_same_call_which_continues_the_cut_cell(tmp_path):
    """On preemption submitit calls ``checkpoint`` and requeues what it returns: the same call, which resumes."""
    pytest.importorskip("submitit")
    task, clean = _cut_cell(tmp_path)
    call = ThreadedCall(run_cell, 1)
    requeued = call.checkpoint(task)
    assert requeued.function is call and requeued.args == (task,)
    outcome = requeued.result()  # what the requeued job runs
    assert outcome.summary["resumed_from_epoch"] == 1
    assert without_times(Run(Path(task.run_dir)).metrics()) == without_times(Run(clean).metrics())


def test_the_grid_reports_each_finished_epoch_of_a_running_cell_once(tmp_path):
    seen = []

    class Recorder(GridObserver):
        def on_cell_epoch(self, task, record):
            seen.append((task.key, record["epoch"]))

    task, _ = _cut_cell(tmp_path)
    watch = EpochWatch(Recorder())
    watch([task])
    watch([task])  # nothing new
    (Path(task.run_dir) / "metrics.jsonl").open("a").write(json.dumps({"kind": "epoch", "epoch": 2}) + "\n")
    watch([task])
    assert seen == [(task.key, 1), (task.key, 2)]


def test_a_full_disk_names_the_file(tmp_path):
    from bnnctl.files import append_line

    with pytest.raises(OSError) as info:
        append_line(Path("/dev/full"), "x")
    assert info.value.filename == "/dev/full" and "space" in info.value.strerror.lower()


def test_a_failed_download_leaves_no_empty_folders_in_the_data_root(tmp_path, monkeypatch):
    from bnnctl.data import sources
    from bnnctl.errors import DataError

    def offline(name, root, download):
        if download:
            (root / "MNIST" / "raw").mkdir(parents=True)  # what torchvision does before it fails to connect
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")
        raise RuntimeError("Dataset not found")

    monkeypatch.setattr(sources, "_load_torchvision", offline)
    root = tmp_path / "data"
    root.mkdir()
    (root / "mine.txt").write_text("the user's own file")
    with pytest.raises(DataError, match="download failed"):
        sources.load_arrays("mnist", root, download=True)
    assert sorted(p.name for p in root.iterdir()) == ["mine.txt"]


def test_resume_on_the_command_line_continues_and_refuses_a_finished_run(tmp_path):
    cfg = compose_train(["debug=tiny", "train.epochs=2"])
    run = create_run(tmp_path, "train", "cut", cfg)
    with pytest.raises(KeyboardInterrupt):
        train_into(run, cfg, ["debug=tiny", "train.epochs=2"], CutAt(epoch=1))
    result = runner.invoke(app, ["train", "--resume", str(run.path), "train.threads=1", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["resumed_from_epoch"] == 1 and run.done
    again = runner.invoke(app, ["train", "--resume", str(run.path)])
    assert again.exit_code == 2 and "nothing to resume" in again.stderr
