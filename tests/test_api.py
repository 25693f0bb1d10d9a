"""CLI / API parity: every command gives through ``bnnctl.api`` the files and numbers it gives on the command line.

Each command is one API function that the CLI calls and renders, so the two
must agree on what they write (file names) and on every number that does not
depend on the clock. Tiny settings throughout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import bnnctl
from bnnctl import api
from bnnctl.cli import app
from bnnctl.errors import ConfigError
from bnnctl.runs import Run, run_id

runner = CliRunner()
TINY = ["debug=tiny", "train.epochs=2"]
CLOCK = ("time", "_s", "per_s", "images_per_s", "ms", "GOP/s")  # keys whose values depend on the clock


def cli_json(*args: str) -> dict | list:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def timeless(mapping: dict) -> dict:
    return {k: v for k, v in mapping.items() if not any(c in k for c in CLOCK) and k not in ("run_dir", "file")}


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny trained run that eval, export and the studies read."""
    return api.train([*TINY, f"runs_dir={tmp_path_factory.mktemp('runs')}"]).path


@pytest.fixture(scope="module")
def trained_cnn(tmp_path_factory) -> Path:
    """A tiny binary CNN, for the unique-filters study."""
    runs = tmp_path_factory.mktemp("runs")
    return api.train(["debug=tiny", "model=bnn_cnn", "train.epochs=1", f"runs_dir={runs}"]).path


def test_train_from_python_is_the_run_the_cli_trains(tmp_path):
    args = [*TINY, f"runs_dir={tmp_path}"]
    result = bnnctl.train(args)
    cli = cli_json("train", *args)
    folders = [result.path, Path(cli["run_dir"])]
    ids = [run_id(Run(folder).config()) for folder in folders]
    assert result.path.parent.name == "train" and ids[0] == ids[1]
    assert timeless(result.summary) == timeless(cli)
    assert files_in(folders[0]) == files_in(folders[1])
    assert [r["epoch"] for r in result.metrics() if r["kind"] == "epoch"] == [1, 2]


def test_eval_and_eval_packed_agree(trained):
    assert timeless(api.evaluate(trained)) == timeless(cli_json("eval", str(trained)))
    python, cli = api.evaluate_packed(trained), cli_json("eval", str(trained), "--packed")
    assert python["identical_predictions"] and timeless(python) == timeless(cli)


def test_export_agrees(trained, tmp_path):
    python = api.export(trained, tmp_path / "a.npz")
    cli = cli_json("export", str(trained), "-o", str(tmp_path / "b.npz"))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert timeless(python) == timeless(cli)


GRID = (
    "name: g\nfixed: [debug=tiny, train.epochs=1, train.max_steps_per_epoch=3]\n"
    "axes:\n  - {key: train.grad_clip, values: [false, true], short: G}\nseeds: [0, 1]\n"
)


def test_ablate_grid_table_and_compare_agree(tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text(GRID)
    python = api.ablate(str(grid), ["launcher=inline", f"runs_dir={tmp_path / 'py'}"])
    cli = cli_json("ablate", "grid", str(grid), "launcher=inline", f"runs_dir={tmp_path / 'cli'}")
    assert python.ok and len(python.done) == 4 and cli["trained"] == 4
    assert list(python.table["cell"]) == ["none", "G"] and list(python.cells["n"]) == [2, 2]
    accuracy = [c for c in python.cells.columns if "acc" in c]
    as_json = json.loads(python.cells[accuracy].to_json(orient="records"))  # NaN as null, as --json prints it
    assert as_json == [{k: row[k] for k in accuracy} for row in cli["table"]]
    assert files_in(python.grid_dir) == files_in(Path(cli["grid_dir"]))
    on_disk = pd.read_csv(python.grid_dir / "results.csv")
    assert on_disk["peak_val_acc_mean"].tolist() == pytest.approx(python.cells["peak_val_acc_mean"].tolist())

    rebuilt = api.ablate_table(python.grid_dir)
    assert rebuilt.tables.table[accuracy].equals(python.cells[accuracy])
    assert cli_json("ablate", "table", str(python.grid_dir))["table"] == json.loads(
        rebuilt.tables.table.to_json(orient="records")
    )

    compared = api.compare([python.grid_dir, Path(cli["grid_dir"])], tmp_path / "cmp-py")
    cli_compared = cli_json("ablate", "compare", str(python.grid_dir), cli["grid_dir"], "-o", str(tmp_path / "cmp-cli"))
    assert json.loads(compared["table"].to_json(orient="records")) == cli_compared["table"]
    assert files_in(tmp_path / "cmp-py") == files_in(tmp_path / "cmp-cli")


@pytest.mark.parametrize(
    ("study", "overrides", "needs_run"),
    [
        ("angles", ["geometry.dims=[64,256]", "geometry.samples=200"], False),
        ("angles", [], True),
        ("dot-products", ["geometry.images=64"], True),
        ("filters", [], "cnn"),
        ("first-layer", ["geometry.dataset=synthetic", "geometry.patches=500"], False),
        ("weights", [], True),
    ],
)
def test_every_geometry_study_agrees(study, overrides, needs_run, trained, trained_cnn, tmp_path):
    runs = [str(trained_cnn if needs_run == "cnn" else trained)] if needs_run else []
    python = api.run_study(study, [*overrides, f"runs_dir={tmp_path / 'py'}"], runs)
    cli = cli_json("geometry", study, *runs, *overrides, f"runs_dir={tmp_path / 'cli'}")
    assert json.loads(python.table.to_json(orient="records")) == cli["table"]
    assert files_in(python.folder) == files_in(Path(cli["folder"]))
    assert (python.folder / "report.html").is_file()


def test_bench_commands_agree_on_what_they_measure(trained, tmp_path):
    gemm = api.bench_gemm([2], [128], rounds=1, output=tmp_path / "py")
    cli = cli_json("bench", "gemm", "--m", "2", "--kn", "128", "--rounds", "1", "-o", str(tmp_path / "cli"))
    methods = lambda r: sorted((row["M"], row["K"], row["method"]) for row in r["products"])
    assert methods(gemm) == methods(cli) and files_in(tmp_path / "py") == files_in(tmp_path / "cli")
    infer = api.bench_infer(trained, [2], rounds=1)
    cli_infer = cli_json("bench", "infer", str(trained), "--batch", "2", "--rounds", "1")
    assert [(r["batch"], r["model"]) for r in infer["rows"]] == [(r["batch"], r["model"]) for r in cli_infer["rows"]]


def test_bench_train_agrees_on_variants():
    args = dict(width=32, rounds=1, warmup=1, compile_model=False)
    python = api.bench_train([4], **args)
    cli = cli_json(
        "bench", "train", "--batch-sizes", "4", "--width", "32", "--rounds", "1", "--warmup", "1", "--no-compile"
    )
    key = lambda r: sorted((row["variant"], row["batch_size"], row["binary_matmul"]) for row in r["rows"])
    assert key(python) == key(cli) and python["skipped"] == cli["skipped"]


def test_report_and_runs_agree(trained, tmp_path):
    python = api.report(trained, tmp_path / "a.html")
    cli = cli_json("report", str(trained), "-o", str(tmp_path / "b.html"))
    assert python.kind == cli["kind"] == "run" and python.page.stat().st_size == cli["bytes"]
    runs_dir = trained.parent.parent
    frame, _ = api.runs_ls(runs_dir)
    assert json.loads(frame.to_json(orient="records")) == cli_json("runs", "ls", "--runs-dir", str(runs_dir))
    assert api.runs_migrate(runs_dir) == [] and cli_json("runs", "migrate", str(runs_dir)) == []


def test_bad_input_raises_the_cli_message(tmp_path):
    with pytest.raises(ConfigError, match="train.epochs must be >= 1"):
        bnnctl.train(["debug=tiny", "train.epochs=0", f"runs_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="unknown study"):
        bnnctl.run_study("nope")
    assert "report" in dir(bnnctl) and not hasattr(bnnctl, "nope")


def test_api_names_survive_importing_every_subpackage():
    """`bnnctl.report` is the function whatever was imported before (no subpackage shares an API name)."""
    code = (
        "import importlib, pkgutil, bnnctl\n"
        "for m in pkgutil.walk_packages(bnnctl.__path__, 'bnnctl.'):\n"
        "    if '.cli' not in m.name and not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "import bnnctl.api\n"
        "assert all(callable(getattr(bnnctl, n)) for n in bnnctl.api.__all__ if n[0].islower()), 'shadowed'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
