"""The Python API: what the commands do, called from a notebook or a script, with the same folders and tables.

``bnnctl.train([...])`` is ``bnnctl train ...``, ``bnnctl.ablate("clip_dropout", [...])``
is ``bnnctl ablate grid clip_dropout ...``, ``bnnctl.report(path)`` is ``bnnctl report
path``, and ``bnnctl.geometry.angles([...])`` is ``bnnctl geometry angles ...``. The
arguments are the command line's overrides, as a list of strings; ``runs_dir=PATH``
may be one of them, as on the command line. Nothing here prints: pass an observer to
watch progress (``bnnctl.training.TrainObserver``, ``bnnctl.sweep.grid.GridObserver``).
Errors are raised as ``bnnctl.errors.BnnctlError`` (the CLI's exit 2) with the same
one-line message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bnnctl.runs import Run
    from bnnctl.sweep.grid import GridObserver, GridResult
    from bnnctl.training import TrainObserver


def train(overrides: Sequence[str] = (), *, observer: TrainObserver | None = None) -> Run:
    """Train as ``bnnctl train OVERRIDES...`` does; returns the finished run folder.

    ``run.summary()`` holds the headline numbers, ``run.metrics()`` every epoch's record,
    ``run.config()`` the resolved config, ``run.path`` the folder.
    """
    from bnnctl.config import compose_train, split_runs_dir
    from bnnctl.runs import create_run, discard_if_untrained
    from bnnctl.training import train_into
    from bnnctl.training.data_parallel import with_launched_world

    overrides = list(overrides)
    runs_dir, hydra_overrides = split_runs_dir(overrides)
    cfg = with_launched_world(compose_train(hydra_overrides))
    run = create_run(runs_dir, "train", cfg.run_name, cfg)
    try:
        train_into(run, cfg, overrides, observer)
    except BaseException:
        discard_if_untrained(run)  # as the CLI: a folder without a finished epoch is not kept
        raise
    return run


def ablate(
    grid: str = "clip_dropout", overrides: Sequence[str] = (), *, observer: GridObserver | None = None
) -> GridResult:
    """Train a grid as ``bnnctl ablate grid GRID OVERRIDES...`` does, then write its table and figures.

    ``result.table`` is the table as ``table.md`` shows it (a DataFrame), ``result.cells``
    the numbers behind it (means, CIs), ``result.files`` what was written; ``result.failed``
    lists the cells that failed (the CLI's exit 3).
    """
    from bnnctl.config import load_grid, load_launcher
    from bnnctl.report.grid_tables import write_grid_results
    from bnnctl.sweep.grid import plan_grid, run_grid, split_grid_args

    name, grid_overrides, launcher_overrides, cell_overrides = split_grid_args([grid, *overrides])
    plan = plan_grid(load_grid(name, grid_overrides), cell_overrides)
    result = run_grid(plan, load_launcher(launcher_overrides), observer)
    written = write_grid_results(plan.grid_dir)
    result.table, result.cells, result.files = written["display"], written["table"], written["files"]
    return result


def report(path: str | Path, output: str | Path | None = None) -> Path:
    """``bnnctl report PATH``: the one-page HTML report of a run, a grid or a study folder; returns its path."""
    from bnnctl.report.html import write_report

    return write_report(Path(path), Path(output) if output is not None else None)


__all__ = ["ablate", "report", "train"]
