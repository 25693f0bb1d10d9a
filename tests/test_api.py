"""The Python API gives the runs and tables the command line gives."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import bnnctl
import bnnctl.geometry
from bnnctl.cli import app
from bnnctl.errors import ConfigError
from bnnctl.runs import Run, run_id

runner = CliRunner()


def test_train_from_python_is_the_run_the_cli_trains(tmp_path):
    args = ["debug=tiny", "train.epochs=2", f"runs_dir={tmp_path}"]
    run = bnnctl.train(args)
    cli = json.loads(runner.invoke(app, ["train", *args, "--json"]).stdout)
    summary = run.summary()
    # one run id, named in both folders (the second may add "-2" when both start in the same second)
    folders = [run.path, Path(cli["run_dir"])]
    ids = [run_id(Run(folder).config()) for folder in folders]
    assert run.path.parent.name == "train" and ids[0] == ids[1]
    assert all(f"_{ids[0]}" in folder.name for folder in folders)
    for key in ("best_val_acc", "final_test_acc", "final_train_loss", "model_params"):
        assert summary[key] == cli[key]
    assert [r["epoch"] for r in run.metrics() if r["kind"] == "epoch"] == [1, 2]


def test_ablate_from_python_returns_the_table_it_wrote(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text(
        "name: g\nfixed: [debug=tiny, train.epochs=1, train.max_steps_per_epoch=3]\n"
        "axes:\n  - {key: train.grad_clip, values: [false, true], short: G}\nseeds: [0, 1]\n"
    )
    result = bnnctl.ablate(str(grid), ["launcher=inline", f"runs_dir={tmp_path}"])
    assert result.ok and len(result.done) == 4
    assert list(result.table["cell"]) == ["none", "G"] and list(result.cells["n"]) == [2, 2]
    on_disk = pd.read_csv(result.plan.grid_dir / "results.csv")
    assert on_disk["peak_val_acc_mean"].tolist() == pytest.approx(result.cells["peak_val_acc_mean"].tolist())
    assert result.plan.grid_dir / "report.html" in result.files


def test_geometry_angles_returns_the_37_degree_table(tmp_path):
    table = bnnctl.geometry.angles(["geometry.dims=[4096]", "geometry.samples=400", f"runs_dir={tmp_path}"])
    assert isinstance(table, pd.DataFrame)
    row = table.iloc[0]
    assert row["mean_deg"] == pytest.approx(37.07, abs=0.3) and row["random_mean_deg"] == pytest.approx(90, abs=0.5)


def test_bad_input_raises_the_cli_message(tmp_path):
    with pytest.raises(ConfigError, match="train.epochs must be >= 1"):
        bnnctl.train(["debug=tiny", "train.epochs=0", f"runs_dir={tmp_path}"])
    assert "report" in dir(bnnctl) and not hasattr(bnnctl, "nope")
