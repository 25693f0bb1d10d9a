"""What a grid finds on disk before it trains: finished twins in other grids (copied), damaged runs (set aside)."""

from __future__ import annotations

import shutil
from pathlib import Path

from bnnctl.runs.folder import Run, Status
from bnnctl.runs.grids import cell_run_dir
from bnnctl.runs.making import set_aside
from bnnctl.sweep.plan import CellTask, GridPlan


def finished_twin(task: CellTask) -> Path | None:
    """A finished run of the same cell id and seed in another grid of the same runs folder, if one exists.

    Cell ids hash the resolved config, so a twin is the same experiment; the
    ``report_attribution`` grid's faithful cells are ``clip_dropout_report``'s.
    """
    run_dir = Path(task.run_dir)  # <runs_dir>/ablate/<grid>/cells/<cell id>/seed-<n>
    grid = run_dir.parents[2]
    for other in sorted(grid.parent.iterdir()):
        twin = cell_run_dir(other, task.cell.cell_id, task.seed)
        if other != grid and Run(twin).status() is Status.done:
            return twin
    return None


def adopt_finished_twins(plan: GridPlan) -> list[tuple[CellTask, Path]]:
    """Copy each pending run that another grid has finished (copied, not linked: a grid folder stands alone).

    The copy lands under a temporary name and is renamed into place, so an
    interrupted copy is never mistaken for a finished run; ``shared_from.txt``
    names the source.
    """
    adopted = []
    for task in plan.pending():
        twin = finished_twin(task)
        if twin is None:
            continue
        target = Path(task.run_dir)
        staging = target.with_name(target.name + ".copying")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(twin, staging)
        (staging / "shared_from.txt").write_text(f"{twin}\n")
        if target.exists():
            shutil.rmtree(target)  # an interrupted attempt of this grid's own
        staging.rename(target)
        adopted.append((task, twin))
    return adopted


def set_aside_damaged(plan: GridPlan) -> list[tuple[CellTask, Path]]:
    """Rename each finished run whose summary cannot be read to ``seed-<n>.damaged``, so the grid trains it again.

    Without this a DONE marker beside a truncated summary would be skipped by
    every rerun while no table could count it.
    """
    moved = []
    for task in plan.tasks:
        run = Run(Path(task.run_dir))
        if run.done and run.status() is Status.damaged:
            moved.append((task, set_aside(run)))
    return moved
