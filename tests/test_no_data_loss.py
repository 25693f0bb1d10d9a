"""Nothing that reads results destroys them: real published folders, copied, then read by every reading command."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from bnnctl.cli import app
from helpers import REPO

runner = CliRunner()
PUBLISHED_COPY = REPO / "docs" / "results" / "ablation" / "clip_dropout_fashion_5ep"  # tables, no run folders
PUBLISHED_RUNS = REPO / "runs" / "published" / "clip_dropout_fashion_15ep" / "ablate" / "clip_dropout"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ablate_table_on_a_published_copy_refuses_and_writes_nothing(tmp_path):
    copy = tmp_path / "x"
    shutil.copytree(PUBLISHED_COPY, copy)
    before = snapshot(copy)
    result = runner.invoke(app, ["ablate", "table", str(copy)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "runs.csv lists 24 finished runs but only 0 run folders" in result.stderr
    assert snapshot(copy) == before


def test_report_of_a_published_copy_keeps_its_tables(tmp_path):
    copy = tmp_path / "x"
    shutil.copytree(PUBLISHED_COPY, copy)
    before = {k: v for k, v in snapshot(copy).items() if k != "report.html"}
    result = runner.invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.stderr
    assert {k: v for k, v in snapshot(copy).items() if k != "report.html"} == before


def test_a_page_written_elsewhere_leaves_the_grid_folder_alone(tmp_path):
    grid = tmp_path / "grid"
    shutil.copytree(PUBLISHED_RUNS, grid)
    before = snapshot(grid)
    result = runner.invoke(app, ["report", str(grid), "-o", str(tmp_path / "elsewhere.html")])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "elsewhere.html").stat().st_size > 0
    assert snapshot(grid) == before  # no tables, figures or page rewritten in the grid
