"""Ablation grids: cells and labels, validation before the start, resume after a real kill, launchers, tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bnnctl.api import ablate_table
from bnnctl.cli import app
from bnnctl.config.load import load_grid, load_launcher
from bnnctl.errors import ConfigError, RunError
from bnnctl.reporting.tables import latex_escape, t_interval
from bnnctl.sweep import GridLock, expand_cells, plan_grid, run_grid, split_grid_args
from helpers import default_sigint

runner = CliRunner()
# Everything but wall time is a function of the run folders: these columns must match across reruns.
DETERMINISTIC = [
    "cell",
    "cell_id",
    "n",
    "peak_val_acc_mean",
    "peak_val_acc_std",
    "peak_val_acc_ci_lo",
    "final_val_acc_mean",
    "test_acc_at_peak_mean",
    "final_test_acc_mean",
    "epochs_to_peak_mean",
]


def write_grid(
    tmp_path: Path,
    name: str = "small",
    axes: str | None = None,
    seeds: str = "[0, 1]",
    fixed: str = "[debug=tiny, train.eval_every=8]",
) -> Path:
    axes = axes or (
        "  - {key: train.weight_clip, values: [false, true], short: W}\n"
        "  - {key: model.dropout, values: [0.0, 0.5], short: D}\n"
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"name: {name}\nfixed: {fixed}\naxes:\n{axes}seeds: {seeds}\n"
        "reference:\n  source: made up\n  values: {none: 0.9, W+D: 0.5}\n"
    )
    return path


def table(grid_dir: Path) -> pd.DataFrame:
    return pd.read_csv(grid_dir / "results.csv")[DETERMINISTIC]


# --- grid files and cells ----------------------------------------------------------


def test_clip_dropout_cells_come_in_the_reports_order_with_its_values():
    grid = load_grid("clip_dropout")
    cells = expand_cells(grid, [])
    assert [c.label for c in cells] == ["none", "W", "D", "G", "W+D", "W+G", "D+G", "W+D+G"]
    assert [grid.reference.values[c.label] for c in cells] == [0.78, 0.78, 0.44, 0.78, 0.43, 0.78, 0.42, 0.43]
    assert grid.seeds == [0, 1, 2]
    wd = cells[4].settings
    assert wd == {"train.weight_clip": True, "model.dropout": 0.5, "train.grad_clip": False}
    assert "train.weight_clip=true" in cells[4].overrides and "model.dropout=0.5" in cells[4].overrides


@pytest.mark.parametrize("name", ["clip_dropout", "regularized", "width", "clip_dropout_report"])
def test_every_shipped_grid_plans_every_cell(name):
    plan = plan_grid(load_grid(name, ["ablation.seeds=[0]"]), ["debug=tiny"])
    assert len({c.cell_id for c in plan.cells}) == len(plan.cells) >= 2
    assert all(t.cfg.data.name == "synthetic" for t in plan.tasks)


def test_cells_of_one_grid_share_a_folder_per_config_and_seeds_split_it(tmp_path):
    plan = plan_grid(load_grid(str(write_grid(tmp_path))), ["debug=tiny", f"runs_dir={tmp_path}"])
    assert len(plan.tasks) == 4 * 2
    dirs = [Path(t.run_dir) for t in plan.tasks]
    assert len(set(dirs)) == 8
    assert all(d.parent.parent == tmp_path / "ablate" / "small" / "cells" for d in dirs)
    assert {d.name for d in dirs} == {"seed-0", "seed-1"}
    again = plan_grid(load_grid(str(write_grid(tmp_path))), ["debug=tiny", f"runs_dir={tmp_path}"])
    assert [t.run_dir for t in again.tasks] == [t.run_dir for t in plan.tasks]
    longer = plan_grid(load_grid(str(write_grid(tmp_path))), ["debug=tiny", f"runs_dir={tmp_path}", "train.epochs=3"])
    assert not set(t.run_dir for t in longer.tasks) & set(t.run_dir for t in plan.tasks)


def test_split_grid_args_routes_each_override():
    assert split_grid_args(
        ["width", "ablation.seeds=[0]", "launcher=ray", "launcher.workers=2", "data=fashion_mnist"]
    ) == ("width", ["ablation.seeds=[0]"], ["launcher=ray", "launcher.workers=2"], ["data=fashion_mnist"])
    assert split_grid_args(["train.epochs=2"])[0] == "clip_dropout"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: load_grid("nope"), "unknown grid 'nope'"),
        (lambda: load_grid("/no/such/grid.yaml"), "does not exist"),
        (lambda: load_grid("clip_dropout", ["ablation.seeds=[]"]), "ablation.seeds"),
        (lambda: load_grid("clip_dropout", ["ablation.bogus=1"]), "bogus"),
        (lambda: load_launcher(["launcher=slurmx"]), "unknown launcher 'slurmx'"),
        (lambda: load_launcher(["launcher.workers=-1"]), "launcher.workers"),
        (lambda: load_launcher(["launcher.wrkers=2"]), "wrkers"),
        (lambda: expand_cells(load_grid("clip_dropout"), ["model.dropout=0.2"]), "model.dropout is an axis"),
        (lambda: expand_cells(load_grid("clip_dropout"), ["train.seed=3"]), "ablation.seeds"),
        (lambda: split_grid_args(["clip_dropout", "width"]), "unexpected argument 'width'"),
        (
            lambda: load_grid("clip_dropout", ["ablation.seeds=[0,"]),
            r"ablation.seeds=\[0,: the value is not valid YAML: expected .* \(line 1, column 4\)",
        ),
        (lambda: load_launcher(["launcher.workers={"]), r"launcher.workers=\{: the value is not valid YAML"),
    ],
)
def test_bad_grid_input_is_a_one_line_config_error(call, match):
    with pytest.raises(ConfigError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_a_grid_file_with_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\naxes:\n  - {key: train.weight_clip, values: [false,\n")
    with pytest.raises(
        ConfigError, match=rf"cannot read the grid file {path}: not valid YAML: .*\(line 4, column 1\)"
    ) as info:
        load_grid(str(path))
    assert "\n" not in str(info.value)


def test_every_cell_is_validated_before_the_first_one_starts(tmp_path):
    bad = write_grid(tmp_path, axes="  - {key: model.dropout, values: [0.0, 0.5, 1.5]}\n")
    with pytest.raises(ConfigError, match=r"cell 'model.dropout=1.5'.*model.dropout must be in \[0, 1\)"):
        plan_grid(load_grid(str(bad)), ["debug=tiny", f"runs_dir={tmp_path}"])
    assert not (tmp_path / "ablate").exists()
    result = runner.invoke(app, ["ablate", "grid", str(bad), "debug=tiny", f"runs_dir={tmp_path}"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "1.5" in result.stderr


def test_latex_escape_makes_captions_safe():
    assert latex_escape("grid clip_dropout: 95% & more") == r"grid clip\_dropout: 95\% \& more"


def test_t_interval_matches_hand_computation():
    mean, std, lo, hi = t_interval(pd.Series([0.80, 0.82, 0.84]))
    half = 4.302652729911275 * 0.02 / 3**0.5  # t(0.975, df=2)
    assert (mean, std) == pytest.approx((0.82, 0.02))
    assert (lo, hi) == pytest.approx((0.82 - half, 0.82 + half))
    assert t_interval(pd.Series([0.5]))[0] == 0.5 and t_interval(pd.Series([0.5]))[1] != t_interval(pd.Series([0.5]))[1]


def test_a_second_driver_on_the_same_grid_is_refused(tmp_path):
    with GridLock(tmp_path):
        with pytest.raises(RunError, match=f"already running \\(pid {os.getpid()}\\)"):
            with GridLock(tmp_path):
                pass


# --- launchers: the same numbers from every engine ------------------------------------------


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory) -> pd.DataFrame:
    """The small grid trained by the local launcher: what every other launcher must reproduce."""
    tmp = tmp_path_factory.mktemp("local")
    plan = plan_grid(load_grid(str(write_grid(tmp))), [f"runs_dir={tmp}"])
    result = run_grid(plan, load_launcher(["launcher.workers=2", "launcher.threads=1"]))
    assert result.ok and len(result.done) == 8 and not result.skipped
    ablate_table(plan.grid_dir)
    return table(plan.grid_dir)


def test_local_launcher_trains_every_cell_and_writes_the_table(local_reference):
    assert list(local_reference["cell"]) == ["none", "W", "D", "W+D"]
    assert (local_reference["n"] == 2).all()
    assert local_reference["peak_val_acc_mean"].between(0.5, 1.0).all()  # synthetic data is learnable


@pytest.mark.parametrize(
    "launcher",
    [
        ["launcher=ray", "launcher.workers=2", "launcher.threads=1"],
        [
            "launcher=submitit",
            "launcher.cluster=local",
            "launcher.workers=2",
            "launcher.threads=1",
            "launcher.poll_s=0.2",
        ],
    ],
    ids=["ray", "submitit"],
)
def test_cluster_launchers_reproduce_the_local_table(tmp_path, launcher, local_reference):
    plan = plan_grid(load_grid(str(write_grid(tmp_path))), [f"runs_dir={tmp_path}"])
    result = run_grid(plan, load_launcher(launcher))
    assert result.ok, result.failed
    assert len(result.done) == 8
    ablate_table(plan.grid_dir)
    pd.testing.assert_frame_equal(table(plan.grid_dir), local_reference)


def test_a_failed_cell_is_reported_and_the_others_finish(tmp_path):
    # 1600 synthetic training examples: a batch of 5000 fails inside training, not at validation.
    grid = write_grid(tmp_path, axes="  - {key: train.batch_size, values: [50, 5000], short: B}\n", seeds="[0]")
    result = runner.invoke(app, ["ablate", "grid", str(grid), f"runs_dir={tmp_path}", "--json"])
    assert result.exit_code == 3, result.stderr
    summary = json.loads(result.stdout)
    assert summary["trained"] == 1 and len(summary["failed"]) == 1
    failure = summary["failed"][0]
    assert failure["cell"] == "B" and "exceeds the 1600 training examples" in failure["error"]
    assert "Traceback" in (Path(failure["run_dir"]) / "error.txt").read_text()
    assert "Traceback" not in result.stderr
    per_seed = pd.read_csv(Path(summary["grid_dir"]) / "runs.csv")
    assert list(per_seed["status"]) == ["done", "failed"]


# --- resume -------------------------------------------------------------------------------


def _grid_cli(grid: Path, runs: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bnnctl",
        "ablate",
        "grid",
        str(grid),
        f"runs_dir={runs}",
        "train.epochs=4",
        "model.width=256",
        "launcher.workers=1",
        "launcher.threads=1",
        *extra,
    ]


def test_a_killed_grid_resumes_only_the_missing_runs_and_gives_the_same_table(tmp_path):
    grid = write_grid(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The uninterrupted grid, for comparison.
    full = subprocess.run(
        _grid_cli(grid, tmp_path / "full", "--json"), capture_output=True, text=True, env=env, timeout=600
    )
    assert full.returncode == 0, full.stderr
    assert json.loads(full.stdout)["trained"] == 8

    runs = tmp_path / "killed"
    proc = subprocess.Popen(
        _grid_cli(grid, runs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    deadline = time.time() + 300
    while time.time() < deadline and len(list(runs.glob("ablate/small/cells/*/seed-*/DONE"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, as a power cut would
    proc.wait(timeout=60)
    done_before = {p.parent: p.read_text() for p in runs.glob("ablate/small/cells/*/seed-*/DONE")}
    assert 3 <= len(done_before) < 8, "the kill came too late to test anything"
    metrics_before = {d: (d / "metrics.jsonl").read_text() for d in done_before}

    rerun = subprocess.run(_grid_cli(grid, runs, "--json"), capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["skipped"] == len(done_before) and summary["trained"] == 8 - len(done_before)
    for run_dir, stamp in done_before.items():  # finished runs were not touched
        assert (run_dir / "DONE").read_text() == stamp
        assert (run_dir / "metrics.jsonl").read_text() == metrics_before[run_dir]
    pd.testing.assert_frame_equal(table(runs / "ablate" / "small"), table(tmp_path / "full" / "ablate" / "small"))

    # A third run trains nothing and rewrites the same table.
    third = subprocess.run(_grid_cli(grid, runs, "--json"), capture_output=True, text=True, env=env, timeout=600)
    assert third.returncode == 0 and json.loads(third.stdout)["trained"] == 0
    pd.testing.assert_frame_equal(table(runs / "ablate" / "small"), table(tmp_path / "full" / "ablate" / "small"))


# --- the table command ------------------------------------------------------------------------


def test_table_command_rebuilds_every_file_with_the_report_beside_each_cell(tmp_path):
    plan = plan_grid(load_grid(str(write_grid(tmp_path, seeds="[0]"))), [f"runs_dir={tmp_path}"])
    grid = run_grid(plan, load_launcher(["launcher.workers=1", "launcher.threads=1"]))
    assert grid.ok and grid.concurrency == "1 at once x 1 threads"
    speeds = [outcome.summary["samples_per_s"] for _, outcome in grid.done]
    assert 0 < grid.samples_per_s < max(speeds)  # one worker: below its fastest run's own pace (set-up, evaluation)
    ablate_table(plan.grid_dir)
    for name in ("results.csv", "table.md", "table.tex", "curves.png"):
        (plan.grid_dir / name).unlink()
    result = runner.invoke(app, ["ablate", "table", str(plan.grid_dir)])
    assert result.exit_code == 0, result.stderr
    for name in ("results.csv", "runs.csv", "table.md", "table.tex", "curves.png"):
        assert (plan.grid_dir / name).stat().st_size > 0
    md = (plan.grid_dir / "table.md").read_text()
    assert "report peak val %" in md and "| none " in md and "| 90 " in md and "| 50 " in md
    median = sorted(speeds)[len(speeds) // 2 - 1 : len(speeds) // 2 + 1]
    assert f"Throughput: a run trained at {sum(median) / 2:.0f} samples/s (median of 4 runs" in md
    tex = (plan.grid_dir / "table.tex").read_text()
    assert "\\begin{table}" in tex and "W+D" in tex and "\\%" in tex and "±" not in tex
    assert "report" in result.stdout


def test_the_footer_names_the_product_formats_only_where_runs_differ():
    from bnnctl.reporting.grid_tables import products_footer

    per_seed = pd.DataFrame(
        {
            "order": [0, 0, 1, 2, 2],
            "cell": ["none", "none", "W", "D", "D"],
            "status": ["done", "done", "done", "done", "running"],
            "binary_matmul": ["int8", "int8", "int8", "fp32", None],
        }
    )
    assert products_footer(per_seed) == (
        "\nProducts of the +-1 layers (train.binary_matmul as resolved on each run's CPU): "
        "fp32 in 1 run (D); int8 in 3 runs (none, W).\n"
    )
    assert products_footer(per_seed[per_seed["cell"] != "D"]) == ""
    assert products_footer(per_seed.drop(columns="binary_matmul")) == ""


def test_the_report_page_gets_both_footer_lines_from_the_tables_not_from_markdown(tmp_path):
    from bnnctl.reporting.grid_tables import GridTables, products_footer, throughput_footer

    per_seed = pd.DataFrame(
        {
            "order": [0, 1],
            "cell": ["none", "W"],
            "status": ["done", "done"],
            "binary_matmul": ["int8", "fp32"],
            "samples_per_s": [100.0, 300.0],
            "wall_time_s": [3600.0, 3600.0],
        }
    )
    tables = GridTables(tmp_path, {"grid": {}}, per_seed, pd.DataFrame(), pd.DataFrame())
    assert tables.footer == f"{throughput_footer(per_seed)} {products_footer(per_seed).strip()}"
    assert tables.footer.startswith("Throughput: a run trained at 200 samples/s (median of 2 runs, 100-300)")
    assert tables.footer.endswith("fp32 in 1 run (W); int8 in 1 run (none).")


def test_table_of_a_folder_that_is_not_a_grid_is_a_one_line_error(tmp_path):
    result = runner.invoke(app, ["ablate", "table", str(tmp_path)])
    assert result.exit_code == 2 and "not an ablation grid folder" in result.stderr
    assert result.stderr.count("\n") == 1


def test_ctrl_c_stops_the_grid_and_its_workers_with_exit_130(tmp_path):
    grid = write_grid(tmp_path)
    runs = tmp_path / "runs"
    cmd = _grid_cli(grid, runs)
    cmd[cmd.index("train.epochs=4")] = "train.epochs=50"  # cells far longer than the test waits
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
        preexec_fn=default_sigint,  # as a terminal's foreground job (see conftest)
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list(runs.glob("ablate/small/cells/*/seed-0/metrics.jsonl")):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole process group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted: finished cells are kept" in stderr and "Traceback" not in stderr
    assert not list(runs.glob("ablate/small/cells/*/seed-*/DONE"))
    for _ in range(50):  # workers are terminated before the driver exits; give the OS a moment to reap
        leftover = subprocess.run(["pgrep", "-a", "-s", str(proc.pid)], capture_output=True, text=True).stdout.strip()
        if not leftover:
            break
        time.sleep(0.1)
    assert leftover == "", f"processes outlived the grid: {leftover}"


def test_a_worker_killed_mid_cell_fails_that_cell_and_the_grid_goes_on(tmp_path):
    grid = write_grid(tmp_path, axes="  - {key: train.weight_clip, values: [false, true], short: W}\n", seeds="[0]")
    runs = tmp_path / "runs"
    cmd = _grid_cli(grid, runs, "--json")
    cmd[cmd.index("train.epochs=4")] = "train.epochs=12"
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list(runs.glob("ablate/small/cells/*/seed-0/metrics.jsonl")):
        time.sleep(0.1)
    workers = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "spawn_main"], capture_output=True, text=True)
    assert workers.stdout.split(), "no worker process found"
    os.kill(int(workers.stdout.split()[0]), signal.SIGKILL)  # as the kernel's OOM killer would
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 3, stderr
    summary = json.loads(stdout)
    assert summary["trained"] == 1 and len(summary["failed"]) == 1
    assert summary["failed"][0]["cell"] == "none" and "worker process died" in summary["failed"][0]["error"]


def test_result_files_are_readable_by_others_as_the_umask_allows(tmp_path):
    from bnnctl.files import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "x.md", "hi\n")
    finally:
        os.umask(old)
    assert (tmp_path / "x.md").stat().st_mode & 0o777 == 0o644
