"""Data-parallel training: DDP ranks spawned by `bnnctl train dist.world_size=N`, or by torchrun."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist

from bnnctl.distributed.ddp import DistributedError
from bnnctl.distributed.launch import LocalWorld, Rank
from bnnctl.runs import create_run, open_run
from bnnctl.training import train_into
from bnnctl.training.fit import fit_data_parallel
from helpers import tiny

# fp32 products: the int8 path's backward rounds each rank's weight gradient to bf16 before averaging,
# which one process does once for the whole batch (a difference of rounding, not of method).
SAME_BATCH = ("train.batch_size=100", "train.max_steps_per_epoch=8", "train.binary_matmul=fp32")


def trained(runs_dir: Path, *overrides: str):
    cfg = tiny(*overrides)
    run = create_run(runs_dir, "train", cfg.run_name, cfg)
    summary = train_into(run, cfg, list(overrides))
    return run, summary


def test_two_ranks_train_the_weights_one_process_does_at_the_same_global_batch(runs_dir):
    one, s1 = trained(runs_dir, *SAME_BATCH)
    two, s2 = trained(runs_dir, *SAME_BATCH, "dist.world_size=2")
    w1, w2 = one.load_checkpoint()["model"], two.load_checkpoint()["model"]
    assert w1.keys() == w2.keys()
    for key in w1:  # 16 steps of Adam on the BLU MLP: equal up to float rounding of the gradient sums
        assert torch.allclose(w1[key], w2[key], rtol=0, atol=1e-6), key
    assert s1["world_size"] == 1 and s2["world_size"] == 2 and s2["compress"] == "none"
    assert s2["final_test_acc"] == s1["final_test_acc"]
    params = sum(v.numel() for v in w1.values())
    assert s2["comm_bytes_per_step"] == 4 * params and s2["compression_ratio"] == 1
    assert s2["comm_wire_bytes_per_step"] == 4 * params  # a ring all-reduce: 2 (W-1)/W x the buffer
    assert len(list((runs_dir / "train").iterdir())) == 2  # rank 1 wrote no folder of its own
    records = [r for r in two.metrics() if r["kind"] == "epoch"]
    assert [r["iteration"] for r in records] == [8, 16]
    assert all(r["comm_s"] > 0 for r in records)


def test_one_bit_messages_are_counted_at_their_packed_size(runs_dir):
    run, summary = trained(runs_dir, "dist.world_size=2", "dist.compress=sign")
    n = sum(p.numel() for p in run.load_checkpoint()["model"].values())  # < 1 MB: DDP's first bucket holds it all
    assert summary["comm_bytes_per_step"] == math.ceil(n / 8) + 4  # one bit per element + one float scale
    assert summary["comm_float32_bytes_per_step"] == 4 * n
    assert summary["compression_ratio"] == pytest.approx(4 * n / (math.ceil(n / 8) + 4))
    assert summary["final_val_acc"] > 0.5  # 10 classes: error feedback still learns
    _, hadamard = trained(runs_dir, "dist.compress=hadamard", "dist.beta=16")  # a world of one: nothing sent
    assert hadamard["world_size"] == 1 and hadamard["compress_beta"] == 16
    assert hadamard["comm_bytes_per_step"] == math.ceil(n / 8) + 4 * math.ceil(n / 16)
    assert hadamard["comm_wire_bytes_per_step"] == 0


def test_compressed_training_differs_from_uncompressed_but_repeats_itself(runs_dir):
    _, a = trained(runs_dir, *SAME_BATCH, "dist.world_size=2", "dist.compress=sign")
    _, b = trained(runs_dir, *SAME_BATCH, "dist.world_size=2", "dist.compress=sign")
    _, none = trained(runs_dir, *SAME_BATCH, "dist.world_size=2")
    assert a["final_train_loss"] == b["final_train_loss"]
    assert a["final_train_loss"] != none["final_train_loss"]


def _fail_on_rank_1(rank: Rank) -> None:
    raise ValueError("boom on purpose")


def test_rank_0_names_the_rank_that_failed_first():
    world = LocalWorld(2, "gloo", _fail_on_rank_1)
    with pytest.raises(RuntimeError), world:
        dist.all_reduce(torch.ones(3))  # rank 1 never joins the collective: it raised
    assert world.cause(wait_s=10) == "rank 1 failed: ValueError: boom on purpose"
    assert not dist.is_initialized()
    assert all(not child.is_alive() for child in world.children)


def test_a_failed_rank_becomes_one_error_naming_it():
    def fit_on_rank(cfg, run, observer, overrides, dataset, resume, rank):
        dist.all_reduce(torch.ones(2))
        raise AssertionError("not reached: the collective fails when rank 1 dies")

    cfg = tiny("dist.world_size=2", "data=fashion_mnist", "data.root=/nonexistent", "data.download=false")
    with pytest.raises(
        DistributedError, match="rank 1 failed: DataError: dataset .fashion_mnist. not found in /nonexistent"
    ):
        fit_data_parallel(fit_on_rank, cfg, None, None, None)  # rank 0 waits; the spawned rank finds no data


def test_the_excepthook_is_given_back():
    before = sys.excepthook
    _, _ = trained_quietly()
    assert sys.excepthook is before  # torch wraps it with a [rank0] prefix on every join


def trained_quietly():
    from bnnctl.training import fit

    return fit(tiny("dist.compress=bf16", "train.epochs=1", "train.max_steps_per_epoch=2")), None


def test_a_data_parallel_run_cannot_resume(runs_dir):
    from bnnctl.errors import ConfigError
    from bnnctl.training import fit

    with pytest.raises(ConfigError, match="cannot be resumed"):
        fit(tiny("dist.world_size=2"), resume=True)


def test_torchrun_gives_one_run_folder_whose_config_has_its_world_size(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed next to this Python")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    runs = tmp_path / "runs"
    done = subprocess.run(
        [str(torchrun), "--nproc-per-node", "2", "-m", "bnnctl", "train", "debug=tiny", "train.epochs=1",
         "dist.compress=sign", f"runs_dir={runs}", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    [folder] = list((runs / "train").iterdir())
    run = open_run(folder)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["compress"] == "sign"
    assert "world_size: 2" in (folder / "config.yaml").read_text()
    assert run.state().status.value == "done"
    assert json.loads(done.stdout[done.stdout.index("{") :])["run_dir"] == str(folder)  # rank 0 alone printed


def test_a_grid_over_compression_and_world_size_tabulates_bytes_and_plots_accuracy_against_them(tmp_path):
    from typer.testing import CliRunner

    from bnnctl.cli import app

    grid = tmp_path / "dist_tiny.yaml"
    grid.write_text(
        "name: dist_tiny\n"
        "fixed: [debug=tiny, train.epochs=1, train.max_steps_per_epoch=4]\n"
        "axes:\n"
        "  - {key: dist.compress, values: [none, sign], short: compress}\n"
        "  - {key: dist.world_size, values: [1, 2], short: W}\n"
        "seeds: [0]\n"
        "columns: [epoch_time_s, comm_bytes_per_step, compression_ratio]\n"
    )
    result = CliRunner().invoke(app, ["ablate", "grid", str(grid), f"runs_dir={tmp_path}", "launcher=inline", "--json"])
    assert result.exit_code == 0, result.stderr
    grid_dir = Path(json.loads(result.stdout)["grid_dir"])
    lines = [line for line in (grid_dir / "table.md").read_text().splitlines() if line.startswith("| ")]
    header, *body = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    cells = {row[0]: dict(zip(header, row, strict=True)) for row in body}
    assert cells["W"]["kB sent/step"] == "236.8" and cells["W"]["x fewer than float32"] == "1.0"  # 4 B x 59210
    assert cells["compress+W"]["kB sent/step"] == "7.4"  # 1 bit per parameter + a scale
    assert cells["compress+W"]["x fewer than float32"] == "32.0"
    assert cells["none"]["kB sent/step"] == "--"  # one process, no DDP: nothing to count
    assert (grid_dir / "accuracy_vs_bytes.png").stat().st_size > 10_000
    results = pd.read_csv(grid_dir / "results.csv")
    assert results["comm_bytes_per_step_mean"].notna().sum() == 3
