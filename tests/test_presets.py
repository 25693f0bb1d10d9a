"""Every preset and every grid file trains (lightning-hydra-template's habit): a new one is covered when added."""

import pytest

from bnnctl.config import group_options
from bnnctl.config.load import load_grid, load_launcher
from bnnctl.sweep import plan_grid, run_grid
from bnnctl.training import fit
from helpers import tiny

SHORT = ["train.epochs=1", "train.max_steps_per_epoch=3", "model.width=32", "model.width_mult=0.125"]


@pytest.mark.parametrize("preset", group_options("experiment"))
def test_every_experiment_preset_trains_on_tiny_data(preset):
    summary = fit(tiny(f"experiment={preset}", *SHORT))
    assert summary["epochs"] == 1 and 0 <= summary["final_test_acc"] <= 1


@pytest.mark.parametrize("option", group_options("binarize"))
def test_every_binarize_option_trains_on_tiny_data(option):
    summary = fit(tiny(f"binarize={option}", *SHORT))
    assert summary["epochs"] == 1


@pytest.mark.parametrize("model", group_options("model"))
def test_every_model_option_trains_on_tiny_data(model):
    summary = fit(tiny(f"model={model}", *SHORT))
    assert summary["model"] == model


@pytest.mark.parametrize("grid", group_options("ablation"))
def test_every_grid_file_runs_every_cell_on_tiny_data(grid, tmp_path):
    # No model.width here: the width grid sets it per cell (2048 and 4096 for 3 steps: seconds).
    extra = ["train.batch_size=40"] if grid == "dist_compress" else []  # tiny's 50 does not split over 4 ranks
    plan = plan_grid(
        load_grid(grid, ["ablation.seeds=[0]"]), ["debug=tiny", *SHORT[:2], *extra, f"runs_dir={tmp_path}"]
    )
    result = run_grid(plan, load_launcher(["launcher=inline"]))
    assert result.ok, result.failed
    assert len(result.done) == len({c.cell_id for c in plan.cells}) >= 2  # listed cells may share runs
