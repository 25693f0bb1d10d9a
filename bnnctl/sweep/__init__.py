"""Sweeps. Ablation grids: a grid file -> cells x seeds -> one ordinary run folder each.

A cell is one combination of the grid's axis values; it runs once per seed.
Each cell x seed is a training run folder at
``<runs_dir>/ablate/<grid>/cells/<cell id>/seed-<n>/`` (``runs.cell_run_dir``),
where the cell id hashes what the cell's config sets differently from the
schema defaults, without the seed (``runs.cell_id``). A rerun of the same grid
therefore finds the folders it finished (``DONE``), skips them, and trains only
what is missing: a grid survives Ctrl-C, ``kill -9`` and power loss with
nothing finished lost. A folder without ``DONE`` is an interrupted run: it
continues from its last finished epoch (``training.resume``).

The work is in ``plan`` (cells, tasks, the manifest), ``run`` (training them,
outcomes, progress), ``reuse`` (finished twins, damaged runs) and ``lock``;
``launchers`` run any function (inline, local processes, Ray, SLURM) and
``migrate`` upgrades grid folders written before run ids changed. This
package is the one place callers import the grid API from.
"""

from bnnctl.sweep.lock import GridLock
from bnnctl.sweep.plan import (
    Cell,
    CellTask,
    GridPlan,
    expand_cells,
    hydra_value,
    plan_grid,
    split_grid_args,
    write_grid_manifest,
)
from bnnctl.sweep.reuse import adopt_finished_twins, finished_twin, set_aside_damaged
from bnnctl.sweep.run import CellOutcome, EpochWatch, GridObserver, GridResult, Outcome, run_cell, run_grid

__all__ = [
    "Cell",
    "CellOutcome",
    "CellTask",
    "EpochWatch",
    "GridLock",
    "GridObserver",
    "GridPlan",
    "GridResult",
    "Outcome",
    "adopt_finished_twins",
    "expand_cells",
    "finished_twin",
    "hydra_value",
    "plan_grid",
    "run_cell",
    "run_grid",
    "set_aside_damaged",
    "split_grid_args",
    "write_grid_manifest",
]
