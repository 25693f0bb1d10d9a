"""The run contract: one status vocabulary, metrics that survive a crash, folders of the previous version."""

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bnnctl.api import ablate_table
from bnnctl.cli import app
from bnnctl.config.load import load_grid
from bnnctl.reporting.runs_table import collect_runs
from bnnctl.runs import Run, Status, read_manifest
from bnnctl.sweep import plan_grid
from bnnctl.sweep.migrate import migrate_runs

LEGACY = Path(__file__).parent / "fixtures" / "legacy_v1"
LEGACY_GRID_OVERRIDES = ["train.epochs=2", "model.width=32"]  # what the v1 grid ran with, as the command line gave them
DETERMINISTIC = [
    "cell",
    "n",
    "peak_val_acc_mean",
    "peak_val_acc_std",
    "final_val_acc_mean",
    "test_acc_at_peak_mean",
    "final_test_acc_mean",
    "epochs_to_peak_mean",
]
runner = CliRunner()


@pytest.fixture
def legacy_runs(tmp_path) -> Path:
    """A copy of a runs folder written by bnnctl before this version (a grid and a train run)."""
    return Path(shutil.copytree(LEGACY, tmp_path / "runs"))


def test_status_vocabulary_covers_every_state_of_a_folder(tmp_path):
    run = Run(tmp_path / "r")
    assert run.status() is Status.missing
    run.path.mkdir()
    assert run.status() is Status.incomplete
    run.write_error("Traceback ...")
    assert run.status() is Status.failed
    run.write_summary({"best_val_acc": 0.5})
    run.mark_done()
    assert run.status() is Status.done and not (run.path / "error.txt").exists()
    (run.path / "summary.json").write_text("[1, 2, 3]")
    assert run.status() is Status.damaged


def test_a_metrics_line_cut_off_by_a_crash_is_left_out(tmp_path):
    run = Run(tmp_path)
    run.log_metrics({"kind": "epoch", "epoch": 1})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "epoch", "ep')  # the disk filled up mid-line
    assert run.metrics() == [{"kind": "epoch", "epoch": 1}]


def test_the_previous_versions_grid_table_rebuilds_to_the_same_numbers(legacy_runs):
    grid = legacy_runs / "ablate" / "tinygrid"
    recorded = pd.read_csv(grid / "results.csv")[DETERMINISTIC]
    (grid / "results.csv").unlink()
    result = runner.invoke(app, ["ablate", "table", str(grid)])
    assert result.exit_code == 0, result.stderr
    pd.testing.assert_frame_equal(pd.read_csv(grid / "results.csv")[DETERMINISTIC], recorded)


def test_migrated_grid_resumes_with_nothing_to_train_and_the_same_table(legacy_runs):
    grid_file = str(LEGACY / "tinygrid.yaml")
    grid = legacy_runs / "ablate" / "tinygrid"
    before = pd.read_csv(grid / "results.csv")[DETERMINISTIC]
    plan = plan_grid(load_grid(grid_file), [*LEGACY_GRID_OVERRIDES, f"runs_dir={legacy_runs}"])
    assert len(plan.pending()) == 8  # old ids: a rerun would retrain everything

    result = runner.invoke(app, ["runs", "migrate", str(legacy_runs), "--json"])
    assert result.exit_code == 0, result.stderr
    assert '"renamed": 4' in result.stdout
    assert plan_grid(load_grid(grid_file), [*LEGACY_GRID_OVERRIDES, f"runs_dir={legacy_runs}"]).pending() == []
    assert read_manifest(grid)["schema"] == 2 and (grid / "grid.v1.yaml").is_file()
    pd.testing.assert_frame_equal(ablate_table(grid).tables.table[DETERMINISTIC], before)
    assert migrate_runs(legacy_runs)[0].skipped == "already at schema 2"  # a second migration changes nothing


def test_runs_ls_reads_old_folders_and_lists_a_damaged_one_as_damaged(legacy_runs):
    train = legacy_runs / "train"
    old = next(train.iterdir())
    for name, damage in (("bad-yaml", "config.yaml"), ("bad-summary", "summary.json")):
        copy = shutil.copytree(old, train / f"{old.name}-{name}")
        (copy / damage).write_text("[1, 2, 3" if damage == "config.yaml" else "[1, 2, 3]")
    frame = collect_runs(legacy_runs).set_index("run")
    assert frame.loc[old.name, "status"] == "done" and frame.loc[old.name, "model"] == "bnn_mlp"
    assert frame.loc[f"{old.name}-bad-yaml", "status"] == "damaged"
    assert frame.loc[f"{old.name}-bad-summary", "status"] == "damaged"
    result = runner.invoke(app, ["runs", "ls", "--runs-dir", str(legacy_runs)])
    assert result.exit_code == 0 and "damaged" in result.stdout


def test_migration_covers_unstarted_and_unlisted_cells_and_finishes_when_run_again(legacy_runs):
    grid = legacy_runs / "ablate" / "tinygrid"
    manifest = read_manifest(grid)
    unstarted, unlisted = manifest["cells"][0]["id"], manifest["cells"][1]["id"]
    shutil.rmtree(grid / "cells" / unstarted)  # a cell no run of which had started
    text = (grid / "grid.yaml").read_text()
    (grid / "grid.yaml").write_text(text.replace(f"id: {unlisted}", "id: deadbeef"))  # a cell of an earlier command
    first = migrate_runs(legacy_runs)[0]
    assert first.skipped is None and unlisted in first.renamed and unstarted not in first.renamed
    plan = plan_grid(load_grid(str(LEGACY / "tinygrid.yaml")), [*LEGACY_GRID_OVERRIDES, f"runs_dir={legacy_runs}"])
    assert {t.cell.label for t in plan.pending()} == {"none"}  # only the cell that never started
    assert (grid / "cells" / first.renamed[unlisted] / "seed-0" / "DONE").is_file()


def test_a_migration_cut_off_midway_completes_on_the_next_run(legacy_runs):
    grid = legacy_runs / "ablate" / "tinygrid"
    old = read_manifest(grid)["cells"][3]["id"]
    from bnnctl.sweep.migrate import _id_from_runs

    new = _id_from_runs(grid / "cells" / old)
    (grid / "cells" / old).rename(grid / "cells" / new)  # renamed, then the power went
    assert migrate_runs(legacy_runs)[0].skipped is None
    plan = plan_grid(load_grid(str(LEGACY / "tinygrid.yaml")), [*LEGACY_GRID_OVERRIDES, f"runs_dir={legacy_runs}"])
    assert plan.pending() == []


def test_a_checkpoint_without_its_shapes_is_a_one_line_run_error(tmp_path):
    import torch

    from bnnctl.errors import RunError
    from bnnctl.runs import load_trained

    run = Run(tmp_path)
    (tmp_path / "config.yaml").write_text("{}")
    torch.save({"model": {}}, tmp_path / "checkpoint.pt")
    with pytest.raises(RunError, match="no input_shape / num_classes"):
        load_trained(run)
