"""Reading results: ``bnnctl report`` (one page per folder), ``bnnctl runs ls`` and ``bnnctl runs migrate``.

Nothing here destroys what it reads: a page written elsewhere (``output``)
leaves the folder's own files alone, and a grid's tables are rewritten only
from at least as many finished runs as they already hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from bnnctl.sweep.migrate import GridMigration


@dataclass
class ReportResult:
    page: Path
    kind: str  # run, grid or study
    files: list[Path]  # everything written, the page last


def report(path: str | Path, output: str | Path | None = None) -> ReportResult:
    """``bnnctl report PATH [-o FILE]``: the self-contained HTML page of a run, grid or study folder.

    A grid with its run folders gets its tables rebuilt from them first, into
    the grid folder, unless the page goes elsewhere (``output``): then only the
    page is written. A published copy (no run folders) shows its tables as written.
    """
    from bnnctl.api.grids import rebuild_grid
    from bnnctl.errors import RunError
    from bnnctl.reporting.grid_tables import grid_tables, published_grid_tables
    from bnnctl.reporting.html import folder_kind, write_grid_page, write_run_page, write_study_page

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise RunError(f"{folder}: not a folder (give a run, grid or study folder)")
    page = Path(output).expanduser() if output is not None else None
    kind = folder_kind(folder)
    files: list[Path] = []
    if kind == "grid":
        runs_here = (folder / "cells").is_dir()
        if runs_here and page is None:
            files += rebuild_grid(folder)[1]  # as `ablate table`: the page beside the tables shows the same numbers
        else:
            tables = grid_tables(folder) if runs_here else published_grid_tables(folder)
            files.append(write_grid_page(tables, page))
    elif kind == "run":
        files.append(write_run_page(folder, page))
    else:
        files.append(write_study_page(folder, page))
    return ReportResult(files[-1], kind, files)


def runs_ls(runs_dir: str | Path = "runs", write: str | Path | None = None) -> tuple[pd.DataFrame, list[Path]]:
    """``bnnctl runs ls``: one row per training run under ``runs_dir/train`` (a damaged folder is a row).

    ``write``: also runs.csv and runs.md in that folder. Returns the table and the files written.
    """
    from bnnctl.reporting.runs_table import collect_runs
    from bnnctl.reporting.tables import write_table

    frame = collect_runs(runs_dir)
    files = write_table(frame, Path(write), "runs") if write is not None else []
    return frame, files


def runs_migrate(runs_dir: str | Path = "runs") -> list[GridMigration]:
    """``bnnctl runs migrate``: give the cells of grids written by older bnnctl today's ids (nothing retrained)."""
    from bnnctl.sweep.migrate import migrate_runs

    return migrate_runs(runs_dir)
